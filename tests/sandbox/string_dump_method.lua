-- expect: INTERNAL
-- and not reachable as a string method
return (""):dump()
