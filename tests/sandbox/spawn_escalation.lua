-- expect: PERMISSION_DENIED
-- a child asking for io gets at most its parent's policy
local process = require("process")
process.spawn("lib/child_vault.lua", {allow = {"io", "process", "deterministic"}}, process.pid())
local msg = assert(process.receive("result", 2000))
error(require("errors").new{kind = msg.payload, message = "child: " .. msg.payload})
