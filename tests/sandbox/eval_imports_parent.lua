-- expect: INVALID
-- imports cannot leave the source root
local v, e = require("eval_runner").run{source = "return require('x')", imports = {x = "../../../etc/passwd"}}
if e then error(e) end
return v
