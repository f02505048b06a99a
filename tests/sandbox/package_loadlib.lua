-- expect: INTERNAL
-- no native libraries
return package.loadlib("libc.so.6", "system")("id")
