# expect: INTERNAL
# catching the denial does not define the module's commands
catch {package require vault}
return [vault::secret]
