-- expect: PERMISSION_DENIED
-- a module the policy refuses
return require("vault").secret()
