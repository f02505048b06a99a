-- expect: INTERNAL
-- the debug library is absent
return debug.getinfo(1, "S")
