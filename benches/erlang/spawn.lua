-- The Troupe half of the spawn side-by-side (see troupe_bench.erl): traps
-- exits, spawns `...` linked processes that end at once, waits for all
-- their EXIT messages, and returns nanoseconds per process.
local process = require("process")
local time = require("time")
local M = {}

function M.child() end

local n = ...
if n == nil then return M end
process.trap_exits(true)
local t0 = time.monotonic()
for _ = 1, n do
  process.spawn("spawn.lua", { entry = "child", link = true })
end
for _ = 1, n do
  local m = process.receive("EXIT")
  if m.payload.reason ~= "normal" then error("a child failed") end
end
return (time.monotonic() - t0) * 1e6 / n
