# expect: INTERNAL
# no env array: the host's environment stays out
return $env(HOME)
