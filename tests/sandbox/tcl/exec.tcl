# expect: INTERNAL
# no exec: there is no command to run a program
exec cat /etc/passwd
