-- expect: PERMISSION_DENIED
-- a denial inside nested coroutines reaches the top
local inner = coroutine.wrap(function() return coroutine.wrap(function() return require("vault") end)() end)
return inner()
