-- expect: INTERNAL
-- rawset cannot reach it either
rawset(getmetatable(""), "__index", {})
