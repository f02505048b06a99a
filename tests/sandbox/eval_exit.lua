-- expect: INVALID
-- evaluated code cannot end its caller
local v, e = require("eval_runner").run{source = "require('process').exit('bye')", allow_classes = {"process"}}
if e then error(e) end
return v
