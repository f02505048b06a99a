# expect: PERMISSION_DENIED
# the io-class host module is not in the policy
package require vault
return [vault::secret]
