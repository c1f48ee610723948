#!/usr/bin/env bash
# Safe retries, end to end: create an API key, render a document with an Idempotency-Key,
# send the very same request again (as a client would after a lost response), and show that
# the retry got the first response back and only one credit was charged. The key it created
# is revoked when it ends, so runs do not pile up keys (25 at most per user).
#
# Needs curl and python3 (for JSON), and a running server (README, Quick start). Give it a
# dashboard token in TOKEN, on the command line or exported (a plain `TOKEN=…` line in your
# shell does not reach a script):
#
#   TOKEN="$(api-actix tokens issue --user ada@example.com)" examples/retry-render.sh
#
# or an email or user id in JT_USER, and it issues the token itself with `api-actix tokens
# issue` (run it where the server's store is: same directory, or the same DATABASE_URL):
#
#   JT_USER=ada@example.com examples/retry-render.sh
#
# BASE_URL (default http://127.0.0.1:8080) is the server; API_ACTIX (default `api-actix`, from
# PATH) the binary that issues the token.
set -euo pipefail

BASE_URL=${BASE_URL:-http://127.0.0.1:8080}
API_ACTIX=${API_ACTIX:-api-actix}

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

if [ -z "${TOKEN:-}" ]; then
  [ -n "${JT_USER:-}" ] || fail "no TOKEN reached the script: pass it (TOKEN=\"\$TOKEN\" $0) or \
export it, or set JT_USER (an email or user id) to issue one with api-actix"
  command -v "$API_ACTIX" > /dev/null || fail "\`$API_ACTIX\` is not on PATH: run the README's \
\`export PATH=\"\$PWD/target/release:\$PATH\"\`, or set API_ACTIX to the binary"
  TOKEN=$("$API_ACTIX" tokens issue --user "$JT_USER")
fi

# A fresh random value per operation: it also protects the stored replay.
new_idempotency_key() {
  python3 -c 'import uuid; print(uuid.uuid4())'
}

# json FIELD < body: one member of a JSON object, printed raw.
json() {
  python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# call METHOD PATH CREDENTIAL [IDEMPOTENCY_KEY [BODY]]: the body goes to $tmp/body, the headers
# to $tmp/headers, the status to stdout.
tmp=$(mktemp -d)
key_id=
cleanup() {
  if [ -n "$key_id" ]; then
    if [ "$(call POST "/api/v1/keys/$key_id/revoke" "$TOKEN")" = 200 ]; then
      echo "revoked the example's key"
    else
      echo "could not revoke the example's key $key_id: $(cat "$tmp/body")" >&2
    fi
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
call() {
  local args=(-sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -X "$1" "$BASE_URL$2"
    -H "Authorization: Bearer $3")
  if [ -n "${4:-}" ]; then args+=(-H "Idempotency-Key: $4"); fi
  if [ -n "${5:-}" ]; then args+=(-H 'Content-Type: application/json' -d "$5"); fi
  curl "${args[@]}"
}
replayed() {
  grep -qi '^idempotent-replayed: *true' "$tmp/headers"
}

# 1. An API key, created with an Idempotency-Key too: a retry would return the same key.
status=$(call POST /api/v1/keys "$TOKEN" "$(new_idempotency_key)" \
  "{\"name\": \"retry-example-$(date +%s)-$$\"}")
[ "$status" = 201 ] || fail "creating a key answered $status: $(cat "$tmp/body")"
KEY=$(json key < "$tmp/body")
key_id=$(json id < "$tmp/body")
echo "created key $(json preview < "$tmp/body")"

status=$(call GET /api/v1/public/credits/balance "$KEY")
[ "$status" = 200 ] || fail "reading the balance answered $status: $(cat "$tmp/body")"
before=$(json balance < "$tmp/body")
echo "balance before: $before"

# 2. A render with an Idempotency-Key, then the identical request again.
IDEM=$(new_idempotency_key)
BODY='{"template_id": "classic", "fields": {"name": "Ada"}}'
status=$(call POST /api/v1/public/documents "$KEY" "$IDEM" "$BODY")
[ "$status" = 201 ] || fail "the render answered $status: $(cat "$tmp/body")"
first=$(cat "$tmp/body")
echo "render:  201, document $(json id <<< "$first"), charged $(json charged <<< "$first")"

status=$(call POST /api/v1/public/documents "$KEY" "$IDEM" "$BODY")
[ "$status" = 201 ] || fail "the retry answered $status: $(cat "$tmp/body")"
replayed || fail "the retry was not marked Idempotent-Replayed"
[ "$(cat "$tmp/body")" = "$first" ] || fail "the retry's body differs from the first response"
echo "retry:   201, Idempotent-Replayed: true, document $(json id < "$tmp/body") (the same)"

# 3. One credit for the two requests.
status=$(call GET /api/v1/public/credits/balance "$KEY")
[ "$status" = 200 ] || fail "reading the balance answered $status"
after=$(json balance < "$tmp/body")
echo "balance after:  $after"
[ $((before - after)) = 1 ] || fail "charged $((before - after)) credits, expected 1"
echo "OK: one credit charged for the render and its retry"
