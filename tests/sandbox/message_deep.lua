-- expect: INVALID
-- a message nested too deep is refused
local process = require("process")
local t = {}
local cur = t
for i = 1, 1000 do cur.next = {} cur = cur.next end
process.send(process.pid(), "x", t)
