-- expect: LIMIT_EXCEEDED
-- a table that never stops growing
local t = {}
for i = 1, 1e9 do t[i] = i end
