-- expect: PERMISSION_DENIED
-- allow = all is capped the same way
local process = require("process")
process.spawn("lib/child_vault.lua", {allow = "all"}, process.pid())
local msg = assert(process.receive("result", 2000))
error(require("errors").new{kind = msg.payload, message = "child: " .. msg.payload})
