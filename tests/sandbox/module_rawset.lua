-- expect: PERMISSION_DENIED
-- rawset on a module table
rawset(require("json"), "encode", function() return "pwned" end)
