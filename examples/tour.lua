-- tour.lua: a process spawns a worker (this same file, with the argument
-- "worker"), sends it a job and waits for the reply.
--
--   cargo run --release -- run examples/tour.lua       prints {"answer":42}
local process = require("process")

if ... == "worker" then
  local msg = assert(process.receive("job"))
  process.send(assert(msg.from), "done", msg.payload * 2)
  return
end

local worker = assert(process.spawn("tour.lua", nil, "worker"))
process.send(worker, "job", 21)
local reply = assert(process.receive("done", 1000))
return {answer = reply.payload}
