# expect: INTERNAL
# code nested 100,000 deep, built at run time, is an error, not a stack overflow
set s [string repeat {[set y } 100000]
append s 1 [string repeat \] 100000]
if 1 $s
