-- expect: INVALID
-- a cyclic message is refused
local process = require("process")
local t = {}
t.self = t
process.send(process.pid(), "x", t)
