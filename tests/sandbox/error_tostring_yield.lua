-- expect: INTERNAL
-- an error whose __tostring tries to yield
error(setmetatable({}, {__tostring = function() require("time").sleep(1) return "x" end}))
