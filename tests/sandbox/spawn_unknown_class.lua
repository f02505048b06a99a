-- expect: INVALID
-- an unknown class is an error, never ignored
local pid, err = require("process").spawn("lib/child_vault.lua", {allow = {"rootaccess"}})
if err then error(err) end
return pid
