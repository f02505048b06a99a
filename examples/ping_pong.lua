-- ping_pong.lua: two processes exchange N ping/pong round trips.
--
--   cargo run --release -- run examples/ping_pong.lua [N]      (default N = 1000)
--
-- The same script plays both parts: the process started from the command line
-- is the pinger; it spawns a copy of itself with the role argument "pong".
local process = require("process")
local time = require("time")

local role = ...

-- The ponger: echoes every "ping" back to its sender until told to stop.
if role == "pong" then
  local count = 0
  while true do
    local msg = assert(process.receive(nil, 10000))
    if msg.topic == "stop" then
      return count
    end
    assert(process.send(assert(msg.from, "sent by a process"), "pong", msg.payload))
    count = count + 1
  end
end

-- The pinger.
local n = math.tointeger(tonumber(role)) or 1000
local peer = assert(process.spawn("ping_pong.lua", nil, "pong"))
local started = time.now()
for i = 1, n do
  assert(process.send(peer, "ping", i))
  local reply = assert(process.receive("pong", 10000))
  if reply.payload ~= i then
    error(("pong %s answered ping %d"):format(tostring(reply.payload), i))
  end
end
assert(process.send(peer, "stop"))

return { round_trips = n, elapsed_ms = math.floor(time.now() - started) }
