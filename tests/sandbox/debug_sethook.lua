-- expect: INTERNAL
-- no hook tampering: sethook is unreachable
debug.sethook(function() end, "", 1)
while true do end
