-- expect: PERMISSION_DENIED
-- no finalizers that could run in another process
setmetatable({}, {__gc = function() while true do end end})
