#!/usr/bin/env bash
# Runs the same small job in every language whose engine is compiled in:
# each examples/polyglot/job.* file with the arguments 1 2 3, through
# `troupe run` (the engine is chosen by the file's extension).
#
#   examples/polyglot/run.sh                  # every engine feature
#   FEATURES=lua examples/polyglot/run.sh     # only the engines named
set -euo pipefail

cd "$(dirname "$0")/../.."
if [ -n "${FEATURES:-}" ]; then
  cargo build --release --quiet --features "$FEATURES"
else
  cargo build --release --quiet --all-features
fi
troupe="${CARGO_TARGET_DIR:-target}/release/troupe"

for job in examples/polyglot/job.*; do
  printf '%-12s ' "${job##*/}"
  if out=$("$troupe" run "$job" 1 2 3 2>&1); then
    echo "$out"
  elif [[ "$out" == "NOT_FOUND: no engine runs"* ]]; then
    echo "skipped (its engine is not compiled in)"
  else
    echo "FAILED: $out"
    status=1
  fi
done
exit "${status:-0}"
