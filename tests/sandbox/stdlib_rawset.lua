-- expect: PERMISSION_DENIED
-- rawset on the string library
rawset(string, "upper", function() return "pwned" end)
