#!/usr/bin/env bash
# Erlang side-by-side: the same ping-pong and spawn benchmarks in Erlang
# (troupe_bench.erl) and in Troupe (ping_pong.lua, spawn.lua, run with the
# `troupe` CLI), printed together. Both are timed inside their VM, so
# start-up is not counted. Needs `erl`/`erlc` (Debian: erlang-base).
#
#   benches/erlang/run.sh [PING_ROUNDS] [SPAWNS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
rounds="${1:-200000}"
spawns="${2:-100000}"

if ! command -v erlc >/dev/null; then
  echo "erlc not found: apt-get install -y erlang-base" >&2
  exit 1
fi
target="${CARGO_TARGET_DIR:-$repo/target}"
(cd "$repo" && cargo build --release --quiet --bin troupe)
troupe="$target/release/troupe"

beam="$(mktemp -d)"
trap 'rm -rf "$beam"' EXIT
erlc -o "$beam" "$here/troupe_bench.erl"
erlang="$(erl -noshell -pa "$beam" -eval "troupe_bench:main([$rounds, $spawns]), init:stop().")"
erl_ping="$(awk '$1 == "ping_pong" {print $2}' <<<"$erlang")"
erl_spawn="$(awk '$1 == "spawn" {print $2}' <<<"$erlang")"
troupe_ping="$("$troupe" run "$here/ping_pong.lua" "$rounds")"
troupe_spawn="$("$troupe" run "$here/spawn.lua" "$spawns")"

printf '%-36s %14s %14s %8s\n' "benchmark" "Erlang (ns)" "Troupe (ns)" "ratio"
row() {
  awk -v name="$1" -v e="$2" -v t="$3" \
    'BEGIN { printf "%-36s %14.1f %14.1f %7.1fx\n", name, e, t, t / e }'
}
row "ping-pong round trip ($rounds rounds)" "$erl_ping" "$troupe_ping"
row "spawn_link + exit + EXIT msg ($spawns)" "$erl_spawn" "$troupe_spawn"
