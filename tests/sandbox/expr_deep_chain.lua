-- expect: LIMIT_EXCEEDED
-- a long operator chain would overflow the worker's stack in the recursive parser
return require("expr").compile(string.rep("1+", 2000) .. "1")
