# expect: INTERNAL
# no exit: molt's would end the whole host process
exit 1
