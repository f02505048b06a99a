-- expect: INTERNAL
-- module metatables are locked
setmetatable(require("json"), {__index = {encode = function() return "pwned" end}})
