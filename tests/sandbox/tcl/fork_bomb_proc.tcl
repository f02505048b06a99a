# expect: LIMIT_EXCEEDED
# exponential recursion within the depth limit runs into the instruction limit
proc f {n} { if {$n > 0} { f [expr {$n - 1}]; f [expr {$n - 1}] } }
f 100
