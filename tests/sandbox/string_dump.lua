-- expect: INTERNAL
-- string.dump is gone
return string.dump(function() return 1 end)
