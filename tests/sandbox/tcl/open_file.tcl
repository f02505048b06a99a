# expect: INTERNAL
# no open: files are out of reach
set f [open /etc/passwd]
read $f
