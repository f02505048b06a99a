-- expect: INTERNAL
-- no processes
return io.popen("id"):read("a")
