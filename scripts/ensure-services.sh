#!/usr/bin/env bash
# Makes sure what the tests need is present: PostgreSQL on 127.0.0.1:5432, Redis on
# 127.0.0.1:6379, Debian's python3-aiosmtpd (the real SMTP server the mail tests start), and
# Debian's chromium + chromium-driver (the headless browser the dashboard tests drive), and
# Debian's sqlite3 (the reader the embedded-store tests run beside a serving server), and
# Debian's prometheus for its promtool (checks the metrics text and the alert rules).
# Starts a stopped service the way this machine kind starts it; never stops anything.
set -uo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432: starting it" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Redis is not answering on 127.0.0.1:6379: starting it" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
if ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "installing python3-aiosmtpd (the SMTP server used by the mail tests)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq python3-aiosmtpd >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq python3-aiosmtpd >/dev/null
  fi
fi
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium and chromium-driver (the browser the dashboard tests drive)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi
if ! command -v sqlite3 >/dev/null 2>&1; then
  echo "installing sqlite3 (the reader the embedded-store tests run beside the server)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq sqlite3 >/dev/null
  fi
fi
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] || ! command -v wrk >/dev/null 2>&1; then
  # Only the binary is used: the deployment tests run their own nginx on free ports
  # (scripts/nginx-tls.sh), never the system's service (which Debian starts on port 80 where
  # services start on install; `systemctl disable --now nginx` if it is not wanted).
  echo "installing nginx and wrk (the proxy the deployment tests drive, and its load tool)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq nginx wrk >/dev/null
  fi
fi
if ! command -v promtool >/dev/null 2>&1; then
  # Only its promtool is used: it checks the /metrics text and deploy/prometheus/alerts.yml
  # (crates/api-actix/tests/api/metrics_alerts.rs). Debian ships promtool only in the server's
  # package; where services start on install that also starts a Prometheus on port 9090
  # (`systemctl disable --now prometheus` if it is not wanted).
  echo "installing prometheus (for promtool, which checks the metrics and the alert rules)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
fi
# Python tools the tests run, from PyPI, in a private venv: openapi-spec-validator (the API
# document is valid OpenAPI), and openapi-python-client with what the clients it generates import
# (httpx, attrs, python-dateutil: tests/generated_client.rs runs such a client).
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/jobtactics/tools-venv"
if [ ! -x "$TOOLS/bin/openapi-spec-validator" ]; then
  echo "installing openapi-spec-validator (PyPI) into $TOOLS" >&2
  python3 -m venv "$TOOLS" && "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check openapi-spec-validator
fi
if [ ! -x "$TOOLS/bin/openapi-python-client" ] || ! "$TOOLS/bin/python" -c 'import httpx, attrs, dateutil' >/dev/null 2>&1; then
  echo "installing openapi-python-client, httpx, attrs and python-dateutil (PyPI) into $TOOLS" >&2
  python3 -m venv "$TOOLS" && "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check \
    openapi-python-client httpx attrs python-dateutil
fi
pg_isready -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping && /usr/bin/python3 -c 'import aiosmtpd; print("aiosmtpd ok")' \
  && chromedriver --version && sqlite3 --version && "$TOOLS/bin/openapi-spec-validator" --help >/dev/null \
  && "$TOOLS/bin/openapi-python-client" --version && "$TOOLS/bin/python" -c 'import httpx, attrs, dateutil'
