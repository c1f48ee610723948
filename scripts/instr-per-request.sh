#!/usr/bin/env bash
# Instructions the server executes per request, counted by callgrind: repeatable for the same
# binary whatever else the machine is doing, unlike wrk's req/s on this shared VM. Used to
# decide whether a hot-path change helps before the noisy load run confirms it.
#
#   CARGO_TARGET_DIR=... bash scripts/instr-per-request.sh      (REDIS=1 for Redis mode)
#
# Prints instructions per request for GET /healthz, authenticated GET /api/v1/public/me and a
# malformed key's 401, each over N requests (default 4000) after a warm-up. The dump files are
# left in $OUT (default a temp dir) for callgrind_annotate.
# Caveat: under valgrind sha2 takes its software path (no SHA-NI), about 3.5k instructions of
# the /me figure that the real CPU does in a few hundred.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v ab >/dev/null || { apt-get update -qq && apt-get install -y -qq apache2-utils >/dev/null; }
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p api-actix --bin api-actix --example bench_seed
N="${N:-4000}"
OUT="${OUT:-$(mktemp -d)}"
WORK=$(mktemp -d)
VP=""
cleanup() { [ -n "$VP" ] && kill "$VP" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

export DATABASE_URL="sqlite://$WORK/bench.db"
export JT_RATE_LIMIT_PER_SECOND=1000000000 JT_RATE_LIMIT_BURST=1000000000 JT_HIGH_USAGE_THRESHOLD=1000000000
# The malformed-key runs are thousands of failed authentications from one IP: without this the
# per-IP failure limit would turn every later request into a 429 and measure that instead.
export JT_AUTH_FAILURES_PER_MINUTE=1000000000
unset RUST_LOG
[ -n "${REDIS:-}" ] && export REDIS_URL="redis://127.0.0.1:6379"
PORT=$((20000 + RANDOM % 20000))
export JT_BIND="127.0.0.1:$PORT"
# Metrics on, as in production, on a free port (JT_METRICS_BIND=off measures without them).
export JT_METRICS_BIND="${JT_METRICS_BIND:-127.0.0.1:0}"
URL="http://$JT_BIND"
"$TARGET/release/examples/bench_seed" "$DATABASE_URL" 2 2 "$WORK/keys.txt" >/dev/null
KEY=$(head -n1 "$WORK/keys.txt")
BAD="jt_sk_$(printf 'A%.0s' $(seq 1 38))"

valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
  --callgrind-out-file="$OUT/callgrind.out.%p" "$TARGET/release/api-actix" serve >"$WORK/server.log" 2>&1 &
VP=$!
for _ in $(seq 1 300); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done
load() { ab -q -k -n "$1" -c 4 "${@:2}" >/dev/null; }
load 2000 "$URL/healthz"
load 2000 -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me"
load 2000 -H "Authorization: Bearer $BAD" "$URL/api/v1/public/me"
callgrind_control -z "$VP" >/dev/null
load "$N" "$URL/healthz"; callgrind_control -d healthz "$VP" >/dev/null
load "$N" -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me"; callgrind_control -d me "$VP" >/dev/null
load "$N" -H "Authorization: Bearer $BAD" "$URL/api/v1/public/me"; callgrind_control -d malformed "$VP" >/dev/null
kill -TERM "$VP"; wait "$VP" 2>/dev/null || true; VP=""
echo "| request | instructions per request |"
echo "|---|---|"
for f in "$OUT"/callgrind.out.*.[0-9]*; do
  name=$(sed -n 's/^desc: Trigger: dump //p' "$f")
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
  echo "| $name | $((total / N)) |"
done
echo "(dumps in $OUT)" >&2
