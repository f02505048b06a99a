-- expect: INTERNAL
-- nor tuned
collectgarbage("generational", 100, 100)
