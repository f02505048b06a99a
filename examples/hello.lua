-- hello.lua: the smallest Troupe script.
--
--   cargo run --release -- run examples/hello.lua [NAME]
--
-- `...` are the spawn arguments; the value the chunk returns is the process
-- result, which `troupe run` prints as JSON.
local json = require("json")
local time = require("time")

local name = ... or "world"

local started = time.now()
time.sleep("10ms") -- yields to the scheduler: no OS thread blocks while we wait

return {
  greeting = "hello, " .. tostring(name),
  slept_ms = math.floor(time.now() - started),
  roundtrip = json.decode(json.encode({ 1, 2, 3 })),
}
