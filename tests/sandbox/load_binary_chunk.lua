-- expect: INTERNAL
-- binary chunks are refused by load
local bin = string.char(27) .. "LuaT" .. string.rep("\0", 64)
local f = assert(load(bin))
return f()
