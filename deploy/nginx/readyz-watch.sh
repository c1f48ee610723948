#!/usr/bin/env bash
# Active health checks for Debian's nginx, whose upstreams only notice failed connections: polls
# every instance's GET /readyz and keeps nginx's upstream file in step, reloading nginx on each
# change. An instance that accepts connections but does not answer 200 within 1 s (hung, or its
# database unreachable) is written `down`. One that refuses connections (stopped, killed, or
# draining after SIGTERM) is left to nginx, which skips it at the first refused connection and
# retries the request elsewhere: no reload, since a reload closes clients' idle keep-alive
# connections and the requests racing with that close fail.
#
#   readyz-watch.sh UPSTREAM_FILE 'RELOAD COMMAND' HOST:PORT...
#   e.g. readyz-watch.sh /etc/nginx/jobtactics-upstream.conf 'systemctl reload nginx' \
#          127.0.0.1:8081 127.0.0.1:8082 127.0.0.1:8083
#
# READYZ_INTERVAL (default 0.5 s) sets the polling period. When no instance is ready every one is
# listed (nginx then answers from whichever recovers first, rather than 502 for all). One log
# line per change, on stderr. Needs bash and curl.
set -uo pipefail

[ $# -ge 3 ] || { echo "usage: $0 UPSTREAM_FILE 'RELOAD COMMAND' HOST:PORT..." >&2; exit 2; }
FILE=$1 RELOAD=$2
shift 2
INTERVAL=${READYZ_INTERVAL:-0.5}

render() { # the upstream lines for the states $1 (space-separated up|down|gone per instance)
  local -a states=($1)
  local any_up=0 i=0
  for st in "${states[@]}"; do [ "$st" = up ] && any_up=1; done
  for addr in "${ADDRS[@]}"; do
    if [ "${states[$i]}" = down ] && [ $any_up = 1 ]; then
      echo "server $addr max_fails=1 fail_timeout=5s down;"
    else
      echo "server $addr max_fails=1 fail_timeout=5s;"
    fi
    i=$((i + 1))
  done
}

ADDRS=("$@")
trap 'exit 0' TERM INT
while :; do
  states=""
  for addr in "${ADDRS[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$addr/readyz")
    case "$?/$code" in
      0/200) states="$states up" ;;
      7/*) states="$states gone" ;;   # connection refused
      *) states="$states down" ;;
    esac
  done
  wanted=$(render "$states")
  if [ "$wanted" != "$(cat "$FILE" 2>/dev/null)" ]; then
    printf '%s\n' "$wanted" >"$FILE.tmp" && mv "$FILE.tmp" "$FILE"
    echo "readyz-watch: [${states# }] for [${ADDRS[*]}]: reloading nginx" >&2
    sh -c "$RELOAD" || echo "readyz-watch: reload failed: $RELOAD" >&2
  fi
  sleep "$INTERVAL"
done
