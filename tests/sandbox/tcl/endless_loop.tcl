# expect: LIMIT_EXCEEDED
# an empty loop body runs no command: the loop itself is charged
while 1 {}
