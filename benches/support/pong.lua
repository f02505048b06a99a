-- Answers every message with a "pong" carrying its payload, until "stop".
local process = require("process")
while true do
  local m = process.receive()
  if m.topic == "stop" then return end
  process.send(m.from, "pong", m.payload)
end
