#!/usr/bin/env bash
# The `just bench` load run: wrk against the release binary on this machine, comparing on the
# SAME server in the SAME run:
#   1. GET /healthz                              (the baseline)
#   2. GET /api/v1/public/me with a valid key    (target >= 0.90x of 1; p99 added <= 0.5 ms)
#   3. GET /api/v1/public/me with a malformed key (target >= 0.95x of 1)
#   4. 100k distinct keys used, then the server's RSS (target < 100 MB)
#   5. the same 1-2 with REDIS_URL set (target: 2 >= 0.85x of 1)
# Rate limits are raised so the keys' own 429s do not shape the figures.
# Output: a markdown table on stdout (paste into docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

DURATION="${BENCH_DURATION:-10s}"
CONNS="${BENCH_CONNECTIONS:-32}"
KEYS_USERS="${BENCH_USERS:-4000}"     # x 25 keys = 100k distinct keys
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p api-actix --bin api-actix --example bench_seed
BIN="$TARGET/release/api-actix"
SEED="$TARGET/release/examples/bench_seed"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

export DATABASE_URL="sqlite://$WORK/bench.db"
export JT_RATE_LIMIT_PER_SECOND=1000000000 JT_RATE_LIMIT_BURST=1000000000
export JT_HIGH_USAGE_THRESHOLD=1000000000
# Logging as in production (RUST_LOG unset: info, no line per request).
unset RUST_LOG
PORT=$((20000 + RANDOM % 20000))
export JT_BIND="127.0.0.1:$PORT"
URL="http://$JT_BIND"

echo "seeding $KEYS_USERS users x 25 keys…" >&2
"$SEED" "$DATABASE_URL" "$KEYS_USERS" 25 "$WORK/keys.txt"
KEY=$(head -n1 "$WORK/keys.txt")
BAD="jt_sk_$(printf 'A%.0s' $(seq 1 38))"   # right shape, wrong checksum

start_server() {
  "$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

# wrk prints "Requests/sec: N" and, with --latency, "99%  X(us|ms)".
run_wrk() { # name, then curl-ish header args
  local name=$1; shift
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$@" > "$WORK/$name.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$name.txt")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$name.txt")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$name.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/$name.txt")
  echo "$name $rps $p50 $p99 ${non2xx:-0}"
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v); print v } else { sub(/s/,"",v); print v*1000 } }'; }

report() { # baseline line, candidate line, target ratio
  read -r bn brps _ bp99 _ <<<"$1"; read -r cn crps _ cp99 cnon <<<"$2"
  awk -v bn="$bn" -v cn="$cn" -v b="$brps" -v c="$crps" -v bp="$(to_ms "$bp99")" -v cp="$(to_ms "$cp99")" -v t="$3" -v non="$cnon" \
    'BEGIN { r=c/b; printf "| %s vs %s | %.0f | %.0f | %.3f (target >= %.2f) %s | %.3f ms | %.3f ms | %+.3f ms | %s |\n", cn, bn, b, c, r, t, (r>=t?"PASS":"MISS"), bp, cp, cp-bp, non }'
}

echo "| comparison | baseline req/s | candidate req/s | ratio | baseline p99 | candidate p99 | added p99 | candidate non-2xx |"
echo "|---|---|---|---|---|---|---|---|"

start_server
curl -sf -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me" >/dev/null
wrk -t1 -c"$CONNS" -d2s "$URL/healthz" >/dev/null   # warm-up
H=$(run_wrk healthz "$URL/healthz")
M=$(run_wrk me -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me")
B=$(run_wrk malformed -H "Authorization: Bearer $BAD" "$URL/api/v1/public/me")
H2=$(run_wrk healthz_again "$URL/healthz")
report "$H" "$M" 0.90
report "$H2" "$B" 0.95

# 100k distinct keys: every key used at least once (wrk cycles through the file per thread).
cat > "$WORK/keys.lua" <<LUA
local keys = {}
for line in io.lines("$WORK/keys.txt") do keys[#keys + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #keys then i = 1 end
  return wrk.format("GET", "/api/v1/public/me", { ["Authorization"] = "Bearer " .. keys[i] })
end
LUA
NKEYS=$(wc -l < "$WORK/keys.txt")
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
wrk -t1 -c"$CONNS" -d"${BENCH_KEYS_DURATION:-20s}" -s "$WORK/keys.lua" "$URL" > "$WORK/keys_run.txt"
sleep 1
RSS_AFTER=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
KREQ=$(awk '/requests in/ {print $1}' "$WORK/keys_run.txt")
KRPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/keys_run.txt")
echo
echo "| distinct keys | requests sent | req/s (cache misses dominate) | RSS before | RSS after | target |"
echo "|---|---|---|---|---|---|"
awk -v n="$NKEYS" -v r="$KREQ" -v rps="$KRPS" -v a="$RSS_BEFORE" -v b="$RSS_AFTER" \
  'BEGIN { printf "| %d | %d | %.0f | %.1f MB | %.1f MB | < 100 MB %s |\n", n, r, rps, a/1024, b/1024, (b/1024<100 && r>=n ? "PASS" : "MISS") }'
stop_server

if redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  export REDIS_URL="redis://127.0.0.1:6379"
  # A real per-key limit in Redis mode would 429 a single hot key; keep it high so the figure
  # measures the leased path, which still takes every token from Redis.
  start_server
  curl -sf -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me" >/dev/null
  wrk -t1 -c"$CONNS" -d2s -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me" >/dev/null
  RH=$(run_wrk redis_healthz "$URL/healthz")
  RM=$(run_wrk redis_me -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me")
  echo
  echo "| Redis mode | baseline req/s | candidate req/s | ratio | baseline p99 | candidate p99 | added p99 | candidate non-2xx |"
  echo "|---|---|---|---|---|---|---|---|"
  report "$RH" "$RM" 0.85
  stop_server
fi
