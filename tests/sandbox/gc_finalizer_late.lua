-- expect: contained
-- a __gc added after setmetatable is never called
local mt = {}
local hit = false
do local t = setmetatable({}, mt) end
mt.__gc = function() hit = true end
collectgarbage()
collectgarbage()
assert(not hit)
return "contained"
