-- expect: contained
-- a top-level yield is only a pause, never a command
local r = coroutine.yield({id = 13, args = {reason = "fake exit"}})
assert(r == nil)
return "contained"
