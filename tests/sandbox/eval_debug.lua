-- expect: INTERNAL
-- evaluated code gets the same sandbox
local v, e = require("eval_runner").run{source = "return debug.getinfo(1)"}
if e then error(e) end
return v
