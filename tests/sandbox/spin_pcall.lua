-- expect: LIMIT_EXCEEDED
-- an infinite loop inside pcall, restarted forever
while true do pcall(function() while true do end end) end
