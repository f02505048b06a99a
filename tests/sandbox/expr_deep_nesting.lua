-- expect: LIMIT_EXCEEDED
-- deep brackets would overflow the worker's stack in the recursive parser
return assert(require("expr").eval(string.rep("(", 5000) .. "1" .. string.rep(")", 5000)))
