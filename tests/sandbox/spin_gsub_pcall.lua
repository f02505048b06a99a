-- expect: LIMIT_EXCEEDED
-- and one that catches its own limit error
return ("x"):gsub("x", function() while true do pcall(function() while true do end end) end end)
