# expect: LIMIT_EXCEEDED
# catch cannot hold a script past a limit
while 1 { catch { while 1 {} } }
