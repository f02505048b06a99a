-- expect: LIMIT_EXCEEDED
-- string.format doubling a string
local s = "x"
while true do s = string.format("%s%s", s, s) end
