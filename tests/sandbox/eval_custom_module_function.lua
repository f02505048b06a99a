-- expect: INVALID
-- functions cannot be smuggled in as custom modules
local v, e = require("eval_runner").run{source = "return 1", custom_modules = {x = {run = print}}}
if e then error(e) end
return v
