-- expect: NOT_FOUND
-- os is not a module
return require("os").execute("id")
