# expect: INTERNAL
# a proc named package cannot make a module appear
proc package {args} { return ok }
package require vault
return [vault::secret]
