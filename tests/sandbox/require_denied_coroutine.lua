-- expect: PERMISSION_DENIED
-- nor does a coroutine
return coroutine.wrap(function() return require("vault") end)().secret()
