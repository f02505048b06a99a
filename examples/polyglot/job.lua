-- The polyglot job: sums the numbers it is given and greets.
local sum = 0
for _, n in ipairs({...}) do sum = sum + n end
return { greeting = "hello from lua", sum = sum }
