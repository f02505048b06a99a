return "hello from " .. (... or "nobody")
