-- expect: PERMISSION_DENIED
-- pcall does not turn a denial into access
local ok, v = pcall(require, "vault")
if not ok then error(v) end
return v.secret()
