-- expect: INTERNAL
-- asking load for mode 'b' still gets text only
local bin = string.char(27) .. "LuaT" .. string.rep("\0", 64)
return assert(load(bin, "x", "b"))()
