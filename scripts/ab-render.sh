#!/usr/bin/env bash
# A same-run A/B of the paid path on the embedded store: two release binaries take turns on one
# seeded SQLite database (1,000 users, one key each), ROUNDS rounds (default 5), each round
# measuring both binaries with wrk at 32 connections: renders by one hot user, then renders
# spread over the 1,000 users. Prints each binary's median req/s and p99 per shape.
# Usage: scripts/ab-render.sh BIN_A BIN_B [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [ROUNDS]" >&2; exit 2; }
A=$1 B=$2 ROUNDS=${3:-5}
DURATION=${AB_DURATION:-3s} CONNS=${AB_CONNECTIONS:-32}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p api-actix --example bench_seed
SEED="${CARGO_TARGET_DIR:-target}/release/examples/bench_seed"

WORK=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export DATABASE_URL="sqlite://$WORK/ab.db" JT_METRICS_BIND=off
export JT_RATE_LIMIT_PER_SECOND=1000000000 JT_RATE_LIMIT_BURST=1000000000
export JT_HIGH_USAGE_THRESHOLD=1000000000 JWT_SECRET="ab-only-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
unset RUST_LOG REDIS_URL SMTP_URL
PORT=$((20000 + RANDOM % 20000))
export JT_BIND="127.0.0.1:$PORT"
URL="http://$JT_BIND"

"$SEED" "$DATABASE_URL" 1000 1 "$WORK/keys.txt" >/dev/null
head -n1 "$WORK/keys.txt" > "$WORK/hot.txt"
for shape in hot keys; do
  cat > "$WORK/$shape.lua" <<LUA
local keys = {}
for line in io.lines("$WORK/$shape.txt") do keys[#keys + 1] = line end
local i = 0
request = function()
  i = i % #keys + 1
  return wrk.format("POST", "/api/v1/public/documents",
    { ["Authorization"] = "Bearer " .. keys[i], ["Content-Type"] = "application/json" },
    '{"template_id":"classic","fields":{"name":"Ada"}}')
end
LUA
done

# wrk's "99%  X(us|ms|s)" in ms.
p99_ms() { awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+/, "", v);
  print (u == "us" ? v / 1000 : (u == "s" ? v * 1000 : v)) }' "$1"; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$A; [ "$side" = B ] && bin=$B
    "$bin" serve > "$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
    wrk -t1 -c"$CONNS" -d1s -s "$WORK/keys.lua" "$URL" > /dev/null   # warm the key cache
    for shape in hot keys; do
      wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$shape.lua" "$URL" > "$WORK/out.txt"
      rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/out.txt")
      echo "$rps" >> "$WORK/$side.$shape.rps"
      p99_ms "$WORK/out.txt" >> "$WORK/$side.$shape.p99"
      echo "round $round $side $shape: $rps req/s, p99 $(tail -n1 "$WORK/$side.$shape.p99") ms" >&2
    done
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  done
done

echo "| shape ($ROUNDS rounds of $DURATION, $CONNS connections) | A req/s | B req/s | B/A | A p99 ms | B p99 ms |"
echo "|---|---|---|---|---|---|"
for shape in hot keys; do
  a=$(median < "$WORK/A.$shape.rps"); b=$(median < "$WORK/B.$shape.rps")
  ap=$(median < "$WORK/A.$shape.p99"); bp=$(median < "$WORK/B.$shape.p99")
  name="render, one user"; [ "$shape" = keys ] && name="render, 1,000 users"
  echo "| $name | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }') | $ap | $bp |"
done
