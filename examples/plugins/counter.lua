-- Counts words. It trusts its input: an event without text crashes it, which
-- the host reports before carrying on without it.
local name = ...
local process = require("process")
local store = require("store")

process.send("host", "subscribe", {"count"})
while true do
  local msg = assert(process.receive())
  if msg.topic == "stop" then
    return {words = store.get(name .. "/total") or 0}
  end
  local words = 0
  for _ in msg.payload.text:gmatch("%S+") do
    words = words + 1
  end
  local total = (store.get(name .. "/total") or 0) + words
  assert(store.put(name .. "/total", total))
  process.send(assert(msg.from), "reply", {
    id = msg.payload.id,
    text = string.format("%d words (%d so far)", words, total),
  })
end
