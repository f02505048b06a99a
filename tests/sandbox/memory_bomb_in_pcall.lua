-- expect: LIMIT_EXCEEDED
-- pcall cannot swallow running out of memory
local keep = {}
while true do
  pcall(function() keep[#keep + 1] = string.rep("x", 1e6) end)
end
