-- expect: INTERNAL
-- strings get no new metatable
setmetatable("", {__index = {}})
