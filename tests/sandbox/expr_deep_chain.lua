-- expect: LIMIT_EXCEEDED
-- a long operator chain would overflow the worker's stack in the recursive parser
return assert(require("expr").compile(string.rep("1+", 2000) .. "1"))
