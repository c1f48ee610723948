#!/usr/bin/env bash
# Runs deploy/nginx/jobtactics.conf -- the production site file, unchanged but for its ports and
# paths -- in a private nginx (Debian's binary, its own prefix directory, free ports, never the
# system's service or configuration), with a self-signed certificate made here.
#
#   scripts/nginx-tls.sh start DIR HOST:PORT...   serve https in front of these instances
#   scripts/nginx-tls.sh reload DIR               re-read DIR/upstream.conf
#   scripts/nginx-tls.sh stop DIR
#
# `start` writes DIR/nginx.env (NGINX_URL, NGINX_HTTP_URL, NGINX_CA, NGINX_PID, NGINX_ACCESS_LOG,
# NGINX_UPSTREAM_FILE) and prints it. NGINX_HTTPS_PORT / NGINX_HTTP_PORT pick the ports (default:
# free ones). Runs as any user; as root, nginx's workers run as nobody.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SITE="$ROOT/deploy/nginx/jobtactics.conf"

die() { echo "nginx-tls.sh: $*" >&2; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

[ $# -ge 2 ] || die "usage: $0 start DIR HOST:PORT... | reload DIR | stop DIR"
CMD=$1 DIR=$2
shift 2

case "$CMD" in
start)
  [ $# -ge 1 ] || die "start needs at least one instance address (HOST:PORT)"
  NGINX=$(command -v nginx || true)
  [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
  [ -n "$NGINX" ] || die "nginx is not installed: run \`bash scripts/ensure-services.sh\` (installs Debian's nginx)"
  mkdir -p "$DIR/tls" "$DIR/tmp"
  DIR=$(cd "$DIR" && pwd)
  # As root, nginx's workers run as nobody and must reach DIR/tmp.
  [ "$(id -u)" = 0 ] && chmod 0755 "$DIR"

  # A self-signed certificate for the names the tests use.
  if [ ! -s "$DIR/tls/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -addext "basicConstraints=critical,CA:FALSE" \
      -addext "extendedKeyUsage=serverAuth" \
      -keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" 2>/dev/null
    chmod 0600 "$DIR/tls/key.pem"
  fi

  for addr in "$@"; do
    echo "server $addr max_fails=1 fail_timeout=5s;"
  done >"$DIR/upstream.conf"

  HTTPS_PORT=${NGINX_HTTPS_PORT:-$(free_port)}
  HTTP_PORT=${NGINX_HTTP_PORT:-$(free_port)}
  # The site file as installed, with its ports and paths moved into DIR. Every replaced line must
  # be there: a site file that changed shape fails here rather than being run half-rewritten.
  substitutions=(
    "listen 80;|listen 127.0.0.1:$HTTP_PORT;"
    "listen \[::\]:80;|"
    "listen 443 ssl http2;|listen 127.0.0.1:$HTTPS_PORT ssl http2;"
    "listen \[::\]:443 ssl http2;|"
    "include /etc/nginx/jobtactics-upstream.conf;|include $DIR/upstream.conf;"
    "ssl_certificate     /etc/ssl/certs/jobtactics.pem;|ssl_certificate     $DIR/tls/cert.pem;"
    "ssl_certificate_key /etc/ssl/private/jobtactics.key;|ssl_certificate_key $DIR/tls/key.pem;"
    "access_log /var/log/nginx/jobtactics.access.log jobtactics;|access_log $DIR/access.log jobtactics;"
  )
  cp "$SITE" "$DIR/site.conf"
  for s in "${substitutions[@]}"; do
    from=${s%%|*} to=${s#*|}
    grep -q "^ *$from\$" "$DIR/site.conf" || die "$SITE has no line \`$from\`"
    sed -i "s|^\( *\)$from\$|\1$to|" "$DIR/site.conf"
  done

  # The main configuration Debian's /etc/nginx/nginx.conf would be, reduced to what the site
  # needs, with every path inside DIR.
  cat >"$DIR/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $DIR/tmp/body;
    proxy_temp_path $DIR/tmp/proxy;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    default_type application/octet-stream;
    access_log off;
    include $DIR/site.conf;
}
EOF
  "$NGINX" -t -q -p "$DIR" -e "$DIR/error.log" -c "$DIR/nginx.conf" \
    || die "nginx refuses the configuration (see above)"
  # Its own session, so that it outlives this script; stopped by `stop` through its pid.
  setsid "$NGINX" -p "$DIR" -e "$DIR/error.log" -c "$DIR/nginx.conf" \
    </dev/null >>"$DIR/error.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -s -o /dev/null --cacert "$DIR/tls/cert.pem" "https://127.0.0.1:$HTTPS_PORT/healthz" && break
    kill -0 "$PID" 2>/dev/null || die "nginx exited: $(tail -n 5 "$DIR/error.log")"
    sleep 0.05
  done
  cat >"$DIR/nginx.env" <<EOF
NGINX_URL=https://127.0.0.1:$HTTPS_PORT
NGINX_HTTP_URL=http://127.0.0.1:$HTTP_PORT
NGINX_CA=$DIR/tls/cert.pem
NGINX_PID=$PID
NGINX_ACCESS_LOG=$DIR/access.log
NGINX_UPSTREAM_FILE=$DIR/upstream.conf
EOF
  cat "$DIR/nginx.env"
  ;;
reload)
  # shellcheck disable=SC1091
  . "$DIR/nginx.env"
  kill -HUP "$NGINX_PID"
  ;;
stop)
  [ -f "$DIR/nginx.env" ] || exit 0
  # shellcheck disable=SC1091
  . "$DIR/nginx.env"
  kill -TERM "$NGINX_PID" 2>/dev/null || exit 0
  for _ in $(seq 1 50); do kill -0 "$NGINX_PID" 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL "$NGINX_PID" 2>/dev/null || true
  ;;
*) die "unknown command $CMD" ;;
esac
