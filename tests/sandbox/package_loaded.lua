-- expect: INTERNAL
-- no package table
package.loaded.json = {encode = function() return "pwned" end}
