-- expect: INTERNAL
-- no os
os.exit(1)
