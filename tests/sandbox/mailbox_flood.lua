-- expect: LIMIT_EXCEEDED
-- expect lightweight: TIMEOUT
-- Fifty idle children, each sent sixty messages of 1 MiB: queued messages
-- are their receivers' memory, charged to the spawn tree, so the flood
-- fails at the tree's memory limit instead of growing the host. A
-- lightweight sender has none: the mailboxes' byte cap makes it wait
-- until its time is up.
local process = require("process")
if ... == "idle" then
  process.receive("never")
end
local children = {}
for i = 1, 50 do
  children[i] = process.spawn("mailbox_flood.lua", { link = true }, "idle")
end
local mib = string.rep("x", 1 << 20)
for _ = 1, 60 do
  for _, child in ipairs(children) do
    process.send(child, "blob", mib)
  end
end
return "contained"
