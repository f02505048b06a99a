-- Greets people and remembers, in the host's store, how often it has seen each.
-- Its policy lets it read and write store keys under "greeter/" only.
local name = ...
local process = require("process")
local store = require("store")

process.send("host", "subscribe", {"greet"})
while true do
  local msg = assert(process.receive())
  if msg.topic == "stop" then
    return "greeted " .. (store.get(name .. "/total") or 0) .. " people"
  end
  local who = msg.payload.name
  local key = name .. "/seen/" .. who
  local seen = (store.get(key) or 0) + 1
  assert(store.put(key, seen))
  assert(store.put(name .. "/total", (store.get(name .. "/total") or 0) + 1))
  -- A key outside its own prefix is refused by the host's policy.
  local _, err = store.put("counter/total", 0)
  process.send(assert(msg.from), "reply", {
    id = msg.payload.id,
    text = string.format("hello, %s (visit #%d; other plugins' keys: %s)", who, seen, err:kind()),
  })
end
