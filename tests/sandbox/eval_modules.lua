-- expect: PERMISSION_DENIED
-- eval cannot whitelist a module the caller lacks
local v, e = require("eval_runner").run{source = "return require('vault').secret()", modules = {"vault"}}
if e then error(e) end
return v
