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
-- (1024 messages by default), so a send to a busy parent can fail with
-- RATE_LIMITED; that error is retryable, so back off for a millisecond and
-- try again.
if role == "child" then
  time.sleep(math.random(1, 5))
  local parent = assert(process.parent(), "a child has a parent")
  while true do
    local ok, err = process.send(parent, "done", index)
    if ok then
      return index
    end
    if not (err and err:kind() == "RATE_LIMITED") then
      error(err)
    end
    time.sleep(1)
  end
end

-- The parent.
local n = math.tointeger(tonumber(role)) or 10000
local started = time.now()
local replies = 0
for i = 1, n do
  assert(process.spawn("fan_out.lua", nil, "child", i))
  -- Early children reply while later ones are still being spawned: take
  -- what has arrived now and then (without waiting) to keep the mailbox from
  -- filling up.
  if i % 64 == 0 then
    while process.receive("done", 0) do
      replies = replies + 1
    end
  end
end
while replies < n do
  assert(process.receive("done", 30000))
  replies = replies + 1
end

return { processes = n, replies = replies, elapsed_ms = math.floor(time.now() - started) }
