-- expect: PERMISSION_DENIED
-- assignment to a library table
math.floor = function() return 42 end
