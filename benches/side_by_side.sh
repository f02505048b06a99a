#!/usr/bin/env bash
# The side-by-side benchmark: builds the `troupe` binary (release profile)
# and runs `troupe bench`, which times the same jobs in Erlang/OTP (when
# `erl` and `erlc` are installed; Debian: erlang-base), raw mlua and Troupe
# in one run and prints one Markdown table with the ratios.
#
#   benches/side_by_side.sh [--quick] [--no-erlang] [--workers N]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
cargo build --release --quiet --bin troupe
exec "${CARGO_TARGET_DIR:-$repo/target}/release/troupe" bench "$@"
