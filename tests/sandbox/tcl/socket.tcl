# expect: INTERNAL
# no socket
socket 127.0.0.1 22
