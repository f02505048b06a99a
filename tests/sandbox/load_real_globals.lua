-- expect: INTERNAL
-- load with no env gets the process env, not the real globals
local g = assert(load("return _G", "x", "t", nil))()
return assert(g.debug, "no debug in reach").traceback()
