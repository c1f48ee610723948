#!/usr/bin/env bash
# Instructions per paid request (POST /api/v1/public/documents, one user, 32 concurrent
# clients so that the ledger groups charges as under load), next to GET /healthz, counted by
# callgrind on the embedded SQLite store (DBURL=postgres://… for PostgreSQL). Repeatable where
# req/s on this VM is not; it counts CPU instructions only, not the time spent in the kernel
# writing the WAL. The batch sizes vary a little from run to run (they depend on timing), so
# compare runs by their range over two or three runs.
#
#   CARGO_TARGET_DIR=... bash scripts/instr-per-render.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v ab >/dev/null || { apt-get update -qq && apt-get install -y -qq apache2-utils >/dev/null; }
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p api-actix --bin api-actix --example bench_seed
N="${N:-2000}"
C="${C:-32}"
OUT="${OUT:-$(mktemp -d)}"
WORK=$(mktemp -d)
VP=""
cleanup() { [ -n "$VP" ] && kill "$VP" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

export DATABASE_URL="${DBURL:-sqlite://$WORK/bench.db}"
export JT_RATE_LIMIT_PER_SECOND=1000000000 JT_RATE_LIMIT_BURST=1000000000 JT_HIGH_USAGE_THRESHOLD=1000000000
export JT_AUTH_FAILURES_PER_MINUTE=1000000000 JT_METRICS_BIND=off
export JWT_SECRET="bench-only-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
unset RUST_LOG REDIS_URL
PORT=$((20000 + RANDOM % 20000))
export JT_BIND="127.0.0.1:$PORT"
URL="http://$JT_BIND"
"$TARGET/release/examples/bench_seed" "$DATABASE_URL" 2 2 "$WORK/keys.txt" >/dev/null
KEY=$(head -n1 "$WORK/keys.txt")
echo '{"template_id":"classic","fields":{"name":"Ada","title":"Engineer"}}' > "$WORK/body.json"

valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
  --callgrind-out-file="$OUT/callgrind.out.%p" "$TARGET/release/api-actix" serve >"$WORK/server.log" 2>&1 &
VP=$!
for _ in $(seq 1 300); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done
load() { ab -q -k -n "$1" -c "$C" "${@:2}" | grep -E "^Non-2xx" >&2 || true; }
render() { load "$1" -p "$WORK/body.json" -T application/json -H "Authorization: Bearer $KEY" "$URL/api/v1/public/documents"; }
load 1000 "$URL/healthz"
render 1000
callgrind_control -z "$VP" >/dev/null
load "$N" "$URL/healthz"; callgrind_control -d healthz "$VP" >/dev/null
render "$N"; callgrind_control -d render "$VP" >/dev/null
kill -TERM "$VP"; wait "$VP" 2>/dev/null || true; VP=""
echo "| request | instructions per request |"
echo "|---|---|"
for f in "$OUT"/callgrind.out.*.[0-9]*; do
  name=$(sed -n 's/^desc: Trigger: dump //p' "$f")
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
  echo "| $name | $((total / N)) |"
done
echo "(dumps in $OUT)" >&2
