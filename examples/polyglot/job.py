# The polyglot job: sums the numbers it is given and greets.
result = {"greeting": "hello from python", "sum": sum(args)}
