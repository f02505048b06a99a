-- expect: INTERNAL
-- no io
return io.open("/etc/passwd"):read("a")
