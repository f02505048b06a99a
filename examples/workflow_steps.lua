-- A durable workflow: `troupe workflow run steps1 examples/workflow_steps.lua 5`.
-- Kill it at any point and `troupe workflow resume steps1` finishes it: the
-- sleeps already done are not slept again, and the result is the same.
local time = require("time")
local n = ...
local t0 = time.now()
local squares = {}
for i = 1, n do
  time.sleep(200)
  squares[i] = i * i
  print("step " .. i)
end
return { squares = squares, took_ms_at_least = 200 * n, ok = time.now() - t0 >= 200 * n }
