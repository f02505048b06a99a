-- expect: LIMIT_EXCEEDED
-- swallowing the limit error does not let the process go on matching
for _ = 1, 100 do
  pcall(string.match, string.rep("a", 40), string.rep("a?", 40) .. string.rep("a", 40))
end
return "contained"
