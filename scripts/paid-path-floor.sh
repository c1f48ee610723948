#!/usr/bin/env bash
# How fast could a paid request be at best? (issue 10)
#
# Measures, on this machine, the CPU that the databases alone spend per charge on the service's
# own schema, without the service: 32 renders' worth of writes per transaction (one balance
# update per payer, the ledger rows and the documents as multi-row inserts), one hot user and
# then 1,000 users taking turns. Each shape runs twice, ending its transactions with COMMIT and
# with ROLLBACK; the difference is what committing costs (SQLite: the WAL frames, their
# checksums and the checkpoints; PostgreSQL: the WAL flush and the commit). The service cannot
# avoid that part: a charge is durable before its 201.
#
# Then it measures the CPU per request of GET /healthz and of GET /api/v1/public/me (which a
# render does all of, and more) on the release server, the whole machine's share included
# (wrk, the kernel's TCP), and prints the highest render/healthz ratio the targets could see:
#   ceiling = healthz CPU / (me CPU + the commit's CPU per charge)
# an upper bound: it counts nothing for the render's JSON, template, document id, hand-off to
# the ledger thread, the B-tree inserts, or the larger request and response.
#
#   CARGO_TARGET_DIR=... bash scripts/paid-path-floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p api-actix --bin api-actix --example bench_seed
BIN="$TARGET/release/api-actix"
SEED="$TARGET/release/examples/bench_seed"
BATCHES="${FLOOR_BATCHES:-3000}"
PG_SERVER="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="jt_floor_$$"

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
  psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "seeding 4000 users x 25 keys (SQLite, as just bench) and 1000 x 1 (PostgreSQL)…" >&2
"$SEED" "sqlite://$WORK/seed.db" 4000 25 "$WORK/keys.txt" >/dev/null
psql "$PG_SERVER/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null || {
  echo "cannot create a database on $PG_SERVER: start PostgreSQL (bash scripts/ensure-services.sh)" >&2
  exit 1
}
"$SEED" "$PG_SERVER/$PG_DB" 1000 1 "$WORK/pg.keys" >/dev/null
sqlite3 "$WORK/seed.db" "SELECT id FROM users ORDER BY rowid LIMIT 1000" > "$WORK/sqlite.users"
psql -Atq "$PG_SERVER/$PG_DB" -c "SELECT id FROM users ORDER BY id" > "$WORK/pg.users"

# The batches, as the ledger writes them; the document's content is what the bench renders.
gen() { # store (sqlite|pg), users file, shape (hot|1000), end (COMMIT|ROLLBACK)
  python3 - "$@" "$BATCHES" <<'PY'
import random, sys
store, users_file, shape, end, batches = sys.argv[1:6]
users = [l.strip() for l in open(users_file)]
content = r"Ada\nEngineer\n | \n\n\n\nExperience\n\n\nEducation\n"   # escaped line breaks
text = "E'%s'" % content if store == "pg" else "'%s'" % content.replace(r"\n", "\n")
print("UPDATE users SET balance = 1000000000;")
if store == "sqlite":
    print("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
          "PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")
k = 0
for b in range(int(batches)):
    payers = [users[0] if shape == "hot" else users[(k + i) % len(users)] for i in range(32)]
    k += 32
    at = 1_800_000_000_000 + b
    print("BEGIN;" if store == "pg" else "BEGIN IMMEDIATE;", end="")
    for u in sorted(set(payers)):
        print("UPDATE users SET balance = balance - %d WHERE id = '%s';" % (payers.count(u), u), end="")
    print("INSERT INTO credit_ledger (user_id, delta, balance_after, reason, created_at) VALUES %s;"
          % ",".join("('%s', -1, 999, 'render', %d)" % (u, at) for u in payers), end="")
    print("INSERT INTO documents (id, user_id, template_id, content, created_at) VALUES %s;"
          % ",".join("('doc_%08d%04d%08d', '%s', 'classic', %s, %d)"
                     % (b, i, random.randrange(10**8), u, text, at) for i, u in enumerate(payers)), end="")
    print(" %s;" % end)
PY
}

busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }   # the machine's busy clock ticks
TICK_US=$((1000000 / $(getconf CLK_TCK)))
CHARGES=$((BATCHES * 32))

sqlite_run() { # shape, end: prints CPU µs per charge of the sqlite3 process
  cp "$WORK/seed.db" "$WORK/run.db"
  gen sqlite "$WORK/sqlite.users" "$1" "$2" > "$WORK/run.sql"
  /usr/bin/time -f "%U %S" -o "$WORK/time" sqlite3 "$WORK/run.db" < "$WORK/run.sql" >/dev/null
  rm -f "$WORK"/run.db*
  awk -v n="$CHARGES" '{ printf "%.1f", ($1 + $2) * 1e6 / n }' "$WORK/time"
}
pg_run() { # shape, end: prints the machine's CPU µs per charge, psql's own excluded
  gen pg "$WORK/pg.users" "$1" "$2" > "$WORK/run.sql"
  local b0 b1
  b0=$(busy)
  /usr/bin/time -f "%U %S" -o "$WORK/time" psql -q "$PG_SERVER/$PG_DB" -f "$WORK/run.sql" >/dev/null
  b1=$(busy)
  awk -v n="$CHARGES" -v t=$(( (b1 - b0) * TICK_US )) '{ printf "%.1f", (t - ($1 + $2) * 1e6) / n }' "$WORK/time"
}

declare -A COMMITTED COMMIT   # µs per charge: the whole batch committed, and the commit alone
for store in sqlite pg; do
  for shape in hot 1000; do
    c=$(${store}_run "$shape" COMMIT)
    r=$(${store}_run "$shape" ROLLBACK)
    echo "$store $shape: $c µs per charge committed, $r rolled back" >&2
    COMMITTED[$store.$shape]=$c
    COMMIT[$store.$shape]=$(awk -v c="$c" -v r="$r" 'BEGIN { printf "%.1f", c - r }')
  done
done

# /healthz and /me on the release server: µs of the machine's CPU per request.
export DATABASE_URL="sqlite://$WORK/seed.db"
export JT_RATE_LIMIT_PER_SECOND=1000000000 JT_RATE_LIMIT_BURST=1000000000
export JT_HIGH_USAGE_THRESHOLD=1000000000 JT_AUTH_FAILURES_PER_MINUTE=1000000000
export JWT_SECRET="bench-only-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
unset RUST_LOG REDIS_URL
PORT=$((20000 + RANDOM % 20000))
export JT_BIND="127.0.0.1:$PORT"
URL="http://$JT_BIND"
KEY=$(head -n1 "$WORK/keys.txt")
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "$URL/healthz" >/dev/null || { echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }
per_request() { # wrk args: prints the machine's CPU µs per request (median of 3 rounds of 3 s)
  local r b0 b1 n
  for r in 1 2 3; do
    b0=$(busy)
    wrk -t1 -c32 -d3s "$@" > "$WORK/wrk.txt"
    b1=$(busy)
    n=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
    awk -v t=$(( (b1 - b0) * TICK_US )) -v n="$n" 'BEGIN { printf "%.1f\n", t / n }'
  done | sort -n | sed -n 2p
}
wrk -t1 -c32 -d2s -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me" >/dev/null
HEALTHZ=$(per_request "$URL/healthz")
ME=$(per_request -H "Authorization: Bearer $KEY" "$URL/api/v1/public/me")

echo "| | µs of CPU per request or charge |"
echo "|---|---|"
echo "| \`GET /healthz\` (server, wrk, kernel) | $HEALTHZ |"
echo "| \`GET /api/v1/public/me\` (server, wrk, kernel) | $ME |"
for store in sqlite pg; do
  for shape in hot 1000; do
    echo "| $store, $shape: the batch's writes, committed / of which the commit | ${COMMITTED[$store.$shape]} / ${COMMIT[$store.$shape]} |"
  done
done
echo
echo "| render vs /healthz | ceiling (healthz / (me + commit)) | target | floor |"
echo "|---|---|---|---|"
for store in sqlite pg; do
  floor=0.30; [ "$store" = pg ] && floor=0.20
  for shape in hot 1000; do
    awk -v h="$HEALTHZ" -v m="$ME" -v c="${COMMIT[$store.$shape]}" -v s="$store $shape" -v f="$floor" \
      'BEGIN { printf "| %s | %.2fx | 0.50x | %.2fx |\n", s, h / (m + c), f }'
  done
done
