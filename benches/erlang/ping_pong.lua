-- The Troupe half of the ping-pong side-by-side (see troupe_bench.erl):
-- returns nanoseconds per round trip for `...` rounds.
local process = require("process")
local time = require("time")
local M = {}

function M.pong()
  while true do
    local m = process.receive()
    if m.topic == "stop" then return end
    process.send(m.from, "pong", m.payload)
  end
end

local n = ...
if n == nil then return M end
local peer = assert(process.spawn("ping_pong.lua", { entry = "pong" }))
local t0 = time.monotonic()
for i = 1, n do
  process.send(peer, "ping", i)
  local reply = process.receive("pong")
  if reply.payload ~= i then error("out of order pong") end
end
local dt = time.monotonic() - t0
process.send(peer, "stop")
return dt * 1e6 / n
