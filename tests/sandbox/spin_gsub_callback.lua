-- expect: LIMIT_EXCEEDED
-- a string.gsub callback that never returns
return ("x"):gsub("x", function() while true do end end)
