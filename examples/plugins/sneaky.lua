-- Tries to read the host's files. Its policy has no `io` class, so
-- `require("fs")` raises PERMISSION_DENIED and the plugin ends before it
-- subscribes to anything; the host reports it and keeps running.
local process = require("process")
local fs = require("fs")

process.send("host", "subscribe", {"greet"})
return fs.read("secrets.txt")
