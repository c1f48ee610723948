#!/usr/bin/env bash
# What nginx (deploy/nginx/jobtactics.conf, TLS, keep-alive to the instance) adds to the median
# latency of an authenticated GET /api/v1/public/me at one connection: wrk -c1 against the
# instance directly and through nginx, in alternating rounds on the same server, compared within
# each round (the machine's speed drifts between rounds). Target: at most 0.3 ms.
#
#   scripts/nginx-overhead.sh        API_ACTIX (default target/release/api-actix), ROUNDS (5),
#                                    ROUND_SECONDS (5)
# Prints one line per round and the median of the per-round differences.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { echo "wrk is missing: bash scripts/ensure-services.sh" >&2; exit 1; }
export API_ACTIX=${API_ACTIX:-$ROOT/target/release/api-actix}
ROUNDS=${ROUNDS:-5}
SECS=${ROUND_SECONDS:-5}

WORK=$(mktemp -d)
trap '"$ROOT/scripts/cluster.sh" down "$WORK/cluster" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
# One instance on the embedded store, limits out of the way (the figure is the proxy's cost).
export DATABASE_URL="sqlite://$WORK/overhead.db" INSTANCES=1 REDIS_URL=""
export JT_RATE_LIMIT_PER_SECOND=1000000000 JT_RATE_LIMIT_BURST=1000000000
export JT_HIGH_USAGE_THRESHOLD=1000000000
"$ROOT/scripts/cluster.sh" up "$WORK/cluster" >/dev/null
# shellcheck disable=SC1091
. "$WORK/cluster/cluster.env"
export JWT_SECRET_FILE
"$API_ACTIX" users create --email overhead@example.com >/dev/null
TOKEN=$("$API_ACTIX" tokens issue --user overhead@example.com)
KEY=$(curl -sf -X POST "http://$INSTANCE_1_ADDR/api/v1/keys" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"name": "overhead"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" \
  "http://$INSTANCE_1_ADDR/api/v1/public/me")" = 200 ] || { echo "no working key" >&2; exit 1; }

p50_ms() { # wrk's "50%  123.45us" line, in ms; every answer must be a 200
  local out
  out=$(wrk -t1 -c1 -d"${SECS}s" --latency -H "Authorization: Bearer $KEY" "$1")
  if grep -q -e "Non-2xx" -e "Socket errors" <<<"$out"; then
    echo "not every answer was a 200 from $1:" >&2; echo "$out" >&2; exit 1
  fi
  awk '$1 == "50%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
                      else if (v ~ /ms$/) { sub(/ms$/, "", v) }
                      else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
                      printf "%.3f", v }' <<<"$out"
}

# Warm both paths (key cache, TLS session, upstream keep-alive).
wrk -t1 -c1 -d1s -H "Authorization: Bearer $KEY" "http://$INSTANCE_1_ADDR/api/v1/public/me" >/dev/null
wrk -t1 -c1 -d1s -H "Authorization: Bearer $KEY" "$CLUSTER_URL/api/v1/public/me" >/dev/null

diffs=()
for r in $(seq 1 "$ROUNDS"); do
  direct=$(p50_ms "http://$INSTANCE_1_ADDR/api/v1/public/me")
  proxied=$(p50_ms "$CLUSTER_URL/api/v1/public/me")
  d=$(awk -v a="$proxied" -v b="$direct" 'BEGIN { printf "%.3f", a - b }')
  diffs+=("$d")
  echo "round $r: direct p50 ${direct} ms, through nginx (TLS) p50 ${proxied} ms, added ${d} ms"
done
median=$(printf '%s\n' "${diffs[@]}" | sort -g | awk '{ v[NR] = $1 } END {
  if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "median added by nginx: ${median} ms over $ROUNDS rounds of ${SECS} s (target <= 0.3 ms)"
