#!/usr/bin/env bash
# The side-by-side benchmark: builds the `troupe` binary (release profile)
# and runs `troupe bench`, which times the same jobs in Erlang/OTP (when
# `erl` and `erlc` are installed; Debian: erlang-base), raw mlua and Troupe
# in one run and prints one Markdown table with the ratios. With
# `--cluster`, the remote jobs: two Troupe nodes (built with the `cluster`
# feature; needs `etcd` and `protoc`) beside two Erlang nodes, on loopback.
#
#   benches/side_by_side.sh [--quick] [--no-erlang] [--workers N] [--cluster]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
features=()
for arg in "$@"; do
  if [ "$arg" = "--cluster" ]; then features=(--features cluster); fi
done
cargo build --release --quiet --bin troupe "${features[@]}"
exec "${CARGO_TARGET_DIR:-$repo/target}/release/troupe" bench "$@"
