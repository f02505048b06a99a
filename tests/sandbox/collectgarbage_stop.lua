-- expect: INTERNAL
-- the collector cannot be stopped
collectgarbage("stop")
