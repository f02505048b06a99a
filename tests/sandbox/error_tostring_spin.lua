-- expect: LIMIT_EXCEEDED
-- an error whose __tostring never returns
error(setmetatable({}, {__tostring = function() while true do end end}))
