-- expect: LIMIT_EXCEEDED
-- A fork bomb: each process spawns two linked copies of itself and waits.
-- Its spawn tree's cap (processes, or memory) refuses a spawn; the refused
-- process fails and the links take the whole tree down with it.
local process = require("process")
assert(process.spawn("fork_bomb.lua", { link = true }))
assert(process.spawn("fork_bomb.lua", { link = true }))
process.receive("never")
