# expect: INTERNAL
# runaway recursion stops at 1,000 levels
proc f {} { f }
f
