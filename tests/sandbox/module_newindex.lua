-- expect: PERMISSION_DENIED
-- assignment to a module table
require("json").encode = function() return "pwned" end
