// The polyglot job: sums the numbers it is given and greets.
({ greeting: "hello from js", sum: args.reduce((sum, n) => sum + Number(n), 0) })
