#!/usr/bin/env bash
# The embedded store beside a running server, run RUNS times (default 20): the release server
# under render load (wrk -c16), then the operator CLI (users create, credits grant, keys list,
# migrate --status) and a sqlite3 reader against the same file while it serves, then more
# renders; odd runs end with SIGTERM, even runs with kill -9. After each run it checks, from the
# file on disk: every acknowledged render (its 201 read whole by wrk) is a document and a debit,
# every balance is the sum of its ledger, the CLI's writes are there, `pragma integrity_check`
# is ok; and, from what it sampled while the server served: the server always held a lock on the
# database file (/proc/locks) and the WAL was never deleted or replaced.
# Usage: scripts/store-beside-server.sh [RUNS]     (BIN=path/to/api-actix to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-20}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p api-actix
  BIN="${CARGO_TARGET_DIR:-target}/release/api-actix"
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export JWT_SECRET=store-beside-server-secret-of-32-bytes
export JT_METRICS_BIND=off JT_RATE_LIMIT_PER_SECOND=1000000 JT_RATE_LIMIT_BURST=1000000
unset REDIS_URL SMTP_URL JWT_SECRET_FILE

# wrk: renders with one key; each thread writes the ids of its 201s (read whole) to a file.
cat > "$WORK/render.lua" <<'LUA'
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args)
  ids = io.open(os.getenv("IDS") .. "." .. id, "w")
end
request = function()
  return wrk.format("POST", "/api/v1/public/documents",
    { ["Authorization"] = "Bearer " .. os.getenv("KEY"), ["Content-Type"] = "application/json" },
    '{"template_id":"classic","fields":{"name":"Ada"}}')
end
function response(status, headers, body)
  if status == 201 then ids:write(body:match('"id":"([^"]+)"'), "\n"); ids:flush() end
end
LUA

locks_held() { # pid inode: the POSIX locks pid holds on the file with that inode
  awk -v pid="$1" -v ino="$2" '{ sub(/ -> /, " "); split($6, id, ":"); if ($5 == pid && id[3] == ino) n++ } END { print n + 0 }' /proc/locks
}

# Samples until $WORK/stop-watch exists: lines "unlocked" or "wal-lost" or "deleted-fd".
watch_server() { # pid db
  local pid=$1 db=$2 ino wal_ino now
  ino=$(stat -c %i "$db")
  wal_ino=$(stat -c %i "$db-wal" 2>/dev/null || echo none)
  while [ ! -e "$WORK/stop-watch" ]; do
    [ "$(locks_held "$pid" "$ino")" -gt 0 ] || echo unlocked
    now=$(stat -c %i "$db-wal" 2>/dev/null || echo none)
    if [ "$wal_ino" = none ]; then wal_ino=$now
    elif [ "$now" != "$wal_ino" ]; then echo "wal-lost $wal_ino -> $now"; wal_ino=$now; fi
    if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$(basename "$db").*(deleted)"; then echo deleted-fd; fi
    sleep 0.005
  done
}

start_server() { # url: starts serve, sets SERVER_PID and URL
  DATABASE_URL=$1 JT_BIND=127.0.0.1:0 RUST_LOG=info "$BIN" serve > "$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    URL=$(grep -o 'addr=[0-9.:]*' "$WORK/server.log" | head -n1 | sed 's/addr=/http:\/\//') || true
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$WORK/server.log" >&2; exit 1
}

render() { # seconds
  IDS="$WORK/ids.$1.$RANDOM" wrk -t2 -c16 -d"$1" -s "$WORK/render.lua" "$URL" > "$WORK/wrk.txt"
}

q() { # a query on the stopped server's file; an error is printed as the answer
  sqlite3 "$DB" "$1" 2>&1 || true
}

failed=0
printf '| run | stop | acknowledged | on disk | lost | integrity | unlocked samples | WAL lost | deleted fds | CLI writes |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for run in $(seq 1 "$RUNS"); do
  DB="$WORK/run$run/jt.db"; mkdir -p "$(dirname "$DB")"; rm -f "$WORK"/ids.* "$WORK/stop-watch"
  export DATABASE_URL="sqlite://$DB"
  "$BIN" users create --email "ada@example.com" --credits 100000000 > /dev/null
  TOKEN=$("$BIN" tokens issue --user ada@example.com)
  start_server "$DATABASE_URL"
  KEY=$(curl -sf -X POST "$URL/api/v1/keys" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"name":"beside"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
  export KEY
  watch_server "$SERVER_PID" "$DB" > "$WORK/watch.txt" &
  WATCH_PID=$!

  render 4s
  # The operator beside the running server, then more renders.
  "$BIN" users create --email "cli$run@example.com" > /dev/null
  "$BIN" users create --email "granted$run@example.com" > /dev/null
  "$BIN" credits grant --user "granted$run@example.com" --amount 5 > /dev/null
  "$BIN" keys list --user ada@example.com > /dev/null
  "$BIN" migrate --status > /dev/null
  sqlite3 "$DB" 'SELECT count(*) FROM documents' > /dev/null
  if [ $((run % 2)) -eq 1 ]; then
    stop=TERM
    render 2s
    sleep 0.5
    touch "$WORK/stop-watch"; wait "$WATCH_PID"
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || { echo "run $run: the server exited non-zero" >&2; failed=1; }
  else
    stop=KILL
    render 2s &
    WRK_PID=$!
    sleep 1
    touch "$WORK/stop-watch"; wait "$WATCH_PID"
    kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    wait "$WRK_PID" || true
  fi
  SERVER_PID=

  sort -u "$WORK"/ids.* 2>/dev/null | grep -v '^$' > "$WORK/acked.txt" || true
  q 'SELECT id FROM documents' | sort -u > "$WORK/docs.txt"
  q "SELECT substr(reason, 17) FROM credit_ledger WHERE reason LIKE 'document_render:%'" | sort -u > "$WORK/debits.txt"
  acked=$(wc -l < "$WORK/acked.txt")
  ondisk=$(comm -12 "$WORK/acked.txt" "$WORK/docs.txt" | comm -12 - "$WORK/debits.txt" | wc -l)
  lost=$((acked - ondisk))
  integrity=$(q 'PRAGMA integrity_check' | head -c 200 | tr '\n' ' ' | sed 's/ $//')
  unbalanced=$(q 'SELECT count(*) FROM users u WHERE u.balance != (SELECT coalesce(sum(delta), 0) FROM credit_ledger l WHERE l.user_id = u.id)')
  cli=$(q "SELECT (SELECT count(*) FROM users WHERE email = 'cli$run@example.com') || '/' || (SELECT balance FROM users WHERE email = 'granted$run@example.com')")
  unlocked=$(grep -c '^unlocked' "$WORK/watch.txt" || true)
  wal_lost=$(grep -c '^wal-lost' "$WORK/watch.txt" || true)
  deleted=$(grep -c '^deleted-fd' "$WORK/watch.txt" || true)
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$run" "$stop" "$acked" "$ondisk" "$lost" \
    "$integrity" "$unlocked" "$wal_lost" "$deleted" "$cli"
  if [ "$acked" -lt 100 ] || [ "$lost" -ne 0 ] || [ "$integrity" != ok ] || [ "$unbalanced" != 0 ] \
    || [ "$unlocked" -ne 0 ] || [ "$wal_lost" -ne 0 ] || [ "$deleted" -ne 0 ] || [ "$cli" != "1/5" ]; then
    failed=1
    [ "$unbalanced" != 0 ] && echo "run $run: $unbalanced users' balances are not the sum of their ledger" >&2
  fi
  rm -rf "$(dirname "$DB")"
done
[ "$failed" -eq 0 ] && echo "$RUNS runs: nothing lost" || { echo "FAILED" >&2; exit 1; }
