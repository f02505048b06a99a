# expect: LIMIT_EXCEEDED
# memory grows by doubling until the limit
set s x
while 1 { append s $s }
