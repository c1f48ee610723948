# Sourced at the end of load-bench.sh (issue 10): the paid path and balance reads, on SQLite and
# on PostgreSQL, each compared with /healthz of the same server in the same rounds:
#   POST /api/v1/public/documents, one hot user        (target >= 0.5x; not done below 0.3x
#   POST /api/v1/public/documents, 1,000 users          on SQLite / 0.2x on PostgreSQL)
#   GET /api/v1/public/credits/balance and the dashboard's GET /api/v1/credits/balance
#                                                       (target >= 0.7x SQLite, >= 0.5x PostgreSQL)
#   the hot render at one connection                    (added p99 over /healthz <= 1 ms)
# and the ledger's batch-size distribution, from the server's log line at shutdown.
# Uses run_wrk, rounds, report, report_latency, start_server, stop_server, $WORK, $BIN, $SEED.

RENDER_BODY='{"template_id":"classic","fields":{"name":"Ada","title":"Engineer"}}'

render_lua() { # keys file, output lua: POSTs a render, cycling through the keys
  cat > "$2" <<LUA
local keys = {}
for line in io.lines("$1") do keys[#keys + 1] = line end
local i = 0
local body = '$RENDER_BODY'
request = function()
  i = i % #keys + 1
  return wrk.format("POST", "/api/v1/public/documents",
    { ["Authorization"] = "Bearer " .. keys[i], ["Content-Type"] = "application/json" }, body)
end
LUA
}

# One store: $1 label, $2 DATABASE_URL, $3 keys file (one key per user), $4 users file, $5 a
# key with a monthly credit limit (one hot user too: the render_limited row).
paid_rounds() {
  local label=$1 keys=$3 users=$4 limited=$5
  export DATABASE_URL=$2
  render_lua "$limited" "$WORK/$label.limited.lua"
  head -n1 "$keys" > "$WORK/$label.hot.txt"
  head -n 1000 "$keys" > "$WORK/$label.1000.txt"
  render_lua "$WORK/$label.hot.txt" "$WORK/$label.hot.lua"
  render_lua "$WORK/$label.1000.txt" "$WORK/$label.1000.lua"
  local hot jwt
  hot=$(head -n1 "$keys")
  jwt=$("$BIN" tokens issue --user "$(head -n1 "$users")")
  start_server
  wrk -t1 -c"$CONNS" -d2s "$URL/healthz" >/dev/null
  wrk -t1 -c"$CONNS" -d2s -s "$WORK/$label.1000.lua" "$URL" >/dev/null   # warm the key cache
  rounds "paid_$label" "healthz_$label|$URL/healthz" \
    "render_hot_$label|-s $WORK/$label.hot.lua $URL" \
    "render_limited_$label|-s $WORK/$label.limited.lua $URL" \
    "render_1000_$label|-s $WORK/$label.1000.lua $URL" \
    "balance_$label|-H \"Authorization: Bearer $hot\" $URL/api/v1/public/credits/balance" \
    "dash_balance_$label|-H \"Authorization: Bearer $jwt\" $URL/api/v1/credits/balance"
  ROUND_CONNS=1 rounds "paid_latency_$label" "healthz_$label|$URL/healthz" \
    "render_hot_$label|-s $WORK/$label.hot.lua $URL"
  # How the ledger grouped the charges, and which way it wrote them (from /metrics).
  local metrics ledger
  metrics=$(sed -n 's/.*metrics=Some(\([0-9.:]*\)).*/\1/p' "$WORK/server.log" | head -n1)
  ledger=$(curl -sf "http://$metrics/metrics" |
    grep -E '^jt_ledger_(batch_size_(sum|count)|batches_total)' | tr '\n' ' ' || true)
  stop_server
  echo
  echo "${HEADER/comparison/$label: paid path and balances}"
  echo "$RULE"
  local floor_render=0.50 floor_balance=0.70
  [ "$label" = postgres ] && floor_balance=0.50
  report "paid_$label" "healthz_$label" "render_hot_$label" "$floor_render"
  # A key with a monthly limit against the same render without: within 10 %.
  report "paid_$label" "render_hot_$label" "render_limited_$label" 0.90
  report "paid_$label" "healthz_$label" "render_1000_$label" "$floor_render"
  report "paid_$label" "healthz_$label" "balance_$label" "$floor_balance"
  report "paid_$label" "healthz_$label" "dash_balance_$label" "$floor_balance"
  echo
  echo "| $label, one connection | baseline p50 | candidate p50 | baseline p99 | candidate p99 | added p99 (median of rounds) | per-round added p99 (ms) |"
  echo "|---|---|---|---|---|---|---|"
  report_latency "paid_latency_$label" "healthz_$label" "render_hot_$label" 1.0
  echo
  echo "$label ledger: ${ledger:-no /metrics (JT_METRICS_BIND=off)}"
}

unset REDIS_URL
export JWT_SECRET="bench-only-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
awk 'NR % 25 == 1' "$WORK/keys.txt" > "$WORK/sqlite.keys"    # one key per user
paid_rounds sqlite "sqlite://$WORK/bench.db" "$WORK/sqlite.keys" "$WORK/keys.txt.users" "$WORK/keys.txt.limited"

PG_SERVER="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
PG_DB="jt_bench_$$"
if psql "$PG_SERVER/postgres" -qc "CREATE DATABASE $PG_DB" >/dev/null 2>&1; then
  trap 'cleanup; psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1' EXIT
  echo "seeding 1000 users x 1 key on PostgreSQL…" >&2
  "$SEED" "$PG_SERVER/$PG_DB" 1000 1 "$WORK/pg.keys"
  paid_rounds postgres "$PG_SERVER/$PG_DB" "$WORK/pg.keys" "$WORK/pg.keys.users" "$WORK/pg.keys.limited"
else
  echo "PostgreSQL is not reachable at $PG_SERVER: the PostgreSQL paid-path rounds were skipped" >&2
  exit 1
fi
