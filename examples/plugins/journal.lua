-- Appends every event to journal.log. The only plugin the host grants `fs`,
-- and only that one file.
local process = require("process")
local fs = require("fs")
local json = require("json")

process.send("host", "subscribe", {"greet", "count"})
local entries = 0
while true do
  local msg = assert(process.receive())
  if msg.topic == "stop" then
    return {entries = entries}
  end
  local log = fs.read("journal.log") or ""
  assert(fs.write("journal.log", log .. msg.topic .. " " .. json.encode(msg.payload) .. "\n"))
  entries = entries + 1
  local _, err = fs.read("secrets.txt")
  process.send(assert(msg.from), "reply", {
    id = msg.payload.id,
    text = string.format("logged entry #%d (secrets.txt: %s)", entries, err:kind()),
  })
end
