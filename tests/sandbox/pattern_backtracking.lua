-- expect: LIMIT_EXCEEDED
-- exponential backtracking in a Lua pattern: a C loop no hook could stop
return string.find(string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40))
