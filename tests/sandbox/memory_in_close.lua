-- expect: LIMIT_EXCEEDED
-- coroutine.close cannot swallow a __close handler running out of memory
local co = coroutine.create(function()
  local _ <close> = setmetatable({}, { __close = function()
    local t = {}
    for j = 1, 1e7 do t[j] = j end
  end })
  coroutine.yield()
end)
coroutine.resume(co)
local _, _ = coroutine.close(co)
return "contained"
