-- expect: INTERNAL
-- the process thread cannot be closed from inside
return coroutine.close(coroutine.running())
