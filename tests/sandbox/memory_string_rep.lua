-- expect: LIMIT_EXCEEDED
-- one huge allocation
return #string.rep("x", 2^30)
