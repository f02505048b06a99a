-- fan_out.lua: spawn N processes that each sleep a random few milliseconds
-- and reply to their parent; the parent collects every reply.
--
--   cargo run --release -- run examples/fan_out.lua [N]      (default N = 10000)
--
-- The same script plays both parts: children are spawned with the role
-- argument "child".
local process = require("process")
local time = require("time")

local role, index = ...

-- A child: sleep 1-5 ms, then report to the parent. Mailboxes are bounded
-- (1024 messages by default); while the parent's is full, `send` waits for
-- the parent to take a message, so no reply is ever lost.
if role == "child" then
  time.sleep(math.random(1, 5))
  local parent = assert(process.parent(), "a child has a parent")
  process.send(parent, "done", index)
  return index
end

-- The parent: spawn every child, then collect every reply.
local n = math.tointeger(tonumber(role)) or 10000
local started = time.now()
for i = 1, n do
  process.spawn("fan_out.lua", nil, "child", i)
end
local replies = 0
while replies < n do
  assert(process.receive("done", 30000))
  replies = replies + 1
end

return { processes = n, replies = replies, elapsed_ms = math.floor(time.now() - started) }
