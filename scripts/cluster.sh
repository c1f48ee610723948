#!/usr/bin/env bash
# N instances of the service (default 3) on one database and one Redis, behind nginx
# (deploy/nginx/jobtactics.conf through scripts/nginx-tls.sh: TLS, least_conn) with
# deploy/nginx/readyz-watch.sh taking instances whose /readyz fails out of the upstream.
#
#   DATABASE_URL=postgres://… scripts/cluster.sh up DIR     start; prints DIR/cluster.env
#   scripts/cluster.sh down DIR                              stop everything `up` started
#
# Settings: API_ACTIX (the binary; default target/release/api-actix), INSTANCES (3),
# REDIS_URL (default redis://127.0.0.1:6379; empty: none), JT_TRUSTED_PROXIES (default
# 127.0.0.1: nginx's address as the instances see it), JWT_SECRET_FILE (default: a new random
# secret in DIR/jwt-secret). Every other variable of the service (JT_*, SMTP_URL, RUST_LOG…) is
# passed through; JT_BIND and JT_METRICS_BIND are chosen per instance.
#
# DIR/cluster.env: CLUSTER_URL (nginx, https), CLUSTER_HTTP_URL (its plain-HTTP redirect),
# CLUSTER_CA (its certificate), INSTANCES, and per
# instance i (1-based) INSTANCE_i_ADDR, INSTANCE_i_METRICS, INSTANCE_i_PID, INSTANCE_i_LOG; then
# NGINX_PID, NGINX_ACCESS_LOG, NGINX_UPSTREAM_FILE, WATCH_PID, WATCH_LOG, JWT_SECRET_FILE.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "cluster.sh: $*" >&2; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

down() {
  local dir=$1
  [ -f "$dir/pids" ] || return 0
  "$ROOT/scripts/nginx-tls.sh" stop "$dir" || true
  # The watcher (listed first) and the instances, gracefully: the instances drain and flush
  # their usage counts.
  local pids
  pids=$(cat "$dir/pids")
  # CONT first: a stopped (SIGSTOP) process acts on nothing else.
  for pid in $pids; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 150); do
    local alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$dir/pids"
}

[ $# -eq 2 ] || die "usage: $0 up DIR | down DIR"
CMD=$1 DIR=$2
case "$CMD" in
down) down "$DIR"; exit 0 ;;
up) ;;
*) die "unknown command $CMD" ;;
esac

BIN=${API_ACTIX:-$ROOT/target/release/api-actix}
[ -x "$BIN" ] || die "no binary at $BIN: build it (cargo build --release -p api-actix) or set API_ACTIX"
[ -n "${DATABASE_URL:-}" ] || die "set DATABASE_URL (postgres://… for more than one instance)"
N=${INSTANCES:-3}
export DATABASE_URL
export REDIS_URL=${REDIS_URL-redis://127.0.0.1:6379}
[ -z "$REDIS_URL" ] && unset REDIS_URL
export JT_TRUSTED_PROXIES=${JT_TRUSTED_PROXIES-127.0.0.1}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -f "$DIR/pids" ] && die "$DIR already holds a cluster: \`$0 down $DIR\` first"
: >"$DIR/pids"
trap 'rc=$?; [ $rc = 0 ] || { echo "cluster.sh: start failed; stopping what started" >&2; down "$DIR"; }' EXIT

if [ -z "${JWT_SECRET_FILE:-}" ]; then
  (umask 077 && openssl rand -base64 48 >"$DIR/jwt-secret")
  export JWT_SECRET_FILE=$DIR/jwt-secret
fi
export JWT_SECRET_FILE

# Migrations once, before any instance serves (as in a deployment: docs/operating.md).
"$BIN" migrate >"$DIR/migrate.out"

ENVFILE=$DIR/cluster.env.tmp
echo "INSTANCES=$N" >"$ENVFILE"
ADDRS=()
for i in $(seq 1 "$N"); do
  addr=127.0.0.1:$(free_port)
  metrics=127.0.0.1:$(free_port)
  JT_BIND=$addr JT_METRICS_BIND=$metrics setsid "$BIN" serve \
    </dev/null >"$DIR/instance-$i.log" 2>&1 &
  echo $! >>"$DIR/pids"
  ADDRS+=("$addr")
  cat >>"$ENVFILE" <<EOF
INSTANCE_${i}_ADDR=$addr
INSTANCE_${i}_METRICS=$metrics
INSTANCE_${i}_PID=$!
INSTANCE_${i}_LOG=$DIR/instance-$i.log
EOF
done
for i in $(seq 1 "$N"); do
  addr=${ADDRS[$((i - 1))]}
  for t in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$addr/readyz")" = 200 ] && break
    pid=$(sed -n "$i"p "$DIR/pids")
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$DIR/instance-$i.log" >&2; die "instance $i exited"; }
    [ "$t" = 300 ] && { tail -n 20 "$DIR/instance-$i.log" >&2; die "instance $i is not ready after 30 s"; }
    sleep 0.1
  done
done

"$ROOT/scripts/nginx-tls.sh" start "$DIR" "${ADDRS[@]}" >/dev/null
# shellcheck disable=SC1091
. "$DIR/nginx.env"
# nginx first in the list: `down` stops it through nginx-tls.sh, the rest by signal.
setsid "$ROOT/deploy/nginx/readyz-watch.sh" "$NGINX_UPSTREAM_FILE" "kill -HUP $NGINX_PID" \
  "${ADDRS[@]}" </dev/null >"$DIR/readyz-watch.log" 2>&1 &
WATCH_PID=$!
# The watcher is signalled before the instances, so it never reloads nginx during `down`.
{ echo "$WATCH_PID"; cat "$DIR/pids"; } >"$DIR/pids.new" && mv "$DIR/pids.new" "$DIR/pids"

cat >>"$ENVFILE" <<EOF
CLUSTER_URL=$NGINX_URL
CLUSTER_HTTP_URL=$NGINX_HTTP_URL
CLUSTER_CA=$NGINX_CA
NGINX_PID=$NGINX_PID
NGINX_ACCESS_LOG=$NGINX_ACCESS_LOG
NGINX_UPSTREAM_FILE=$NGINX_UPSTREAM_FILE
WATCH_PID=$WATCH_PID
WATCH_LOG=$DIR/readyz-watch.log
JWT_SECRET_FILE=$JWT_SECRET_FILE
EOF
mv "$ENVFILE" "$DIR/cluster.env"
cat "$DIR/cluster.env"
