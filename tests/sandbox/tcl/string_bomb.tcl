# expect: LIMIT_EXCEEDED
# charged before the string is built
string repeat x 1000000000000
