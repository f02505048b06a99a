-- expect: INTERNAL
-- a module table passed as data arrives empty
local v, e = require("eval_runner").run{source = "return require('p').spawn('x.lua')", custom_modules = {p = require("process")}}
if e then error(e) end
return v
