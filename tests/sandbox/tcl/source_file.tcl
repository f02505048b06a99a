# expect: INTERNAL
# no source: molt's standard set reads files with it
source /etc/passwd
