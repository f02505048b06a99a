-- expect: PERMISSION_DENIED
-- globals stay in this process; shared tables stay read-only
leak = "from the attacker"
_G.print = function() end
setmetatable(_G, {__index = function() return "evil" end})
_G.string.format = nil
