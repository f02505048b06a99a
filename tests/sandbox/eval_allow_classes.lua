-- expect: PERMISSION_DENIED
-- eval cannot add a class the caller lacks
local v, e = require("eval_runner").run{source = "return require('vault').secret()", allow_classes = {"io"}}
if e then error(e) end
return v
