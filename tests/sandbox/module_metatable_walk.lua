-- expect: INTERNAL
-- getmetatable on a module gives nothing to walk
for k, v in next, getmetatable(require("json")) do print(k, v) end
