-- expect: NOT_FOUND
-- debug cannot be required either
return require("debug").sethook(print, "", 1)
