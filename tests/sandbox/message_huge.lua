-- expect: LIMIT_EXCEEDED
-- a message too big for the receiver fails only the receiver
local process = require("process")
process.send(process.pid(), "x", string.rep("x", 9e6))
local m = process.receive("x")
return #m.payload
