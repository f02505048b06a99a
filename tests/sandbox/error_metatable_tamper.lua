-- expect: INTERNAL
-- error objects share a locked metatable
local _, e = pcall(require, "vault")
getmetatable(e).__index = function() return "pwned" end
