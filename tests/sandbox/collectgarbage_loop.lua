-- expect: TIMEOUT
-- a collection loop still meets the wall clock
while true do collectgarbage() end
