-- expect: LIMIT_EXCEEDED
-- load cannot swallow running out of memory in its reader
for _ = 1, 3 do
  local _, _ = load(function() local t = {} for j = 1, 1e7 do t[j] = j end end)
end
return "contained"
