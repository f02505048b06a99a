-- expect: INTERNAL
-- the string metatable is not reachable
getmetatable("").__index = {upper = function() return "pwned" end}
