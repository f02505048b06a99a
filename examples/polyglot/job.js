// The polyglot job in JavaScript: the total of an order, 10% off above 10.
// Run: troupe eval --lang js "$(cat examples/polyglot/job.js)" --var price=3 --var qty=4
function job(price, qty) {
  const total = price * qty;
  return total > 10 ? total - Math.floor(total / 10) : total;
}

job(price, qty)
