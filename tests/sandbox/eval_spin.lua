-- expect: LIMIT_EXCEEDED
-- evaluated spinning inside pcall stops at its limit
local v, e = require("eval_runner").run{source = "while true do pcall(function() while true do end end) end", limits = {max_instructions = 1000000}}
if e then error(e) end
return v
