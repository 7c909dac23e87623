#!/usr/bin/env bash
# Prints `export DATABASE_URL=... REDIS_URL=...` for the test suite.
#
# Uses the PostgreSQL and Redis already reachable on 127.0.0.1 (5432 / 6379, or TEST_DATABASE_URL /
# TEST_REDIS_URL). When one is not reachable (a fresh machine), installs the Debian package if missing and
# starts a throw-away instance under $CSMS_TEST_SERVICES_DIR (default /tmp/csms-test-services), reused by later
# runs. Everything it says goes to stderr; stdout is only the export line for `eval`.
set -euo pipefail

PY=${PY:-.venv/bin/python}
STATE=${CSMS_TEST_SERVICES_DIR:-/tmp/csms-test-services}
PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
OWN_PG_PORT=${CSMS_TEST_PG_PORT:-55432}
OWN_REDIS_PORT=${CSMS_TEST_REDIS_PORT:-56379}

log() { echo "test-services: $*" >&2; }

pg_ok() {
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PYEOF
}

redis_ok() {
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, redis
assert redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()
PYEOF
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >&2
}

start_postgres() {
  local initdb bindir data run
  initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$initdb" ]; then
    apt_install postgresql
    initdb=$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
  fi
  bindir=$(dirname "$initdb")
  data="$STATE/pg"
  mkdir -p "$STATE"
  run=()
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$STATE" postgres
    run=(runuser -u postgres --)
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data" && mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    "${run[@]}" "$bindir/initdb" -D "$data" -U postgres -A trust >/dev/null
  fi
  log "starting a throw-away PostgreSQL on 127.0.0.1:$OWN_PG_PORT ($data)"
  "${run[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p $OWN_PG_PORT -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2
}

start_redis() {
  local server
  server=$("$(dirname "$0")/ensure-redis-server.sh")
  mkdir -p "$STATE/redis"
  log "starting a throw-away Redis on 127.0.0.1:$OWN_REDIS_PORT"
  "$server" --port "$OWN_REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
    --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" >&2
  for _ in $(seq 50); do redis_ok "redis://127.0.0.1:$OWN_REDIS_PORT/0" && return 0; sleep 0.1; done
  log "Redis did not come up"; return 1
}

if ! pg_ok "$PG_URL"; then
  own="postgres://postgres@127.0.0.1:$OWN_PG_PORT/postgres"
  log "no PostgreSQL at $PG_URL"
  pg_ok "$own" || start_postgres
  pg_ok "$own" || { log "could not start PostgreSQL"; exit 1; }
  PG_URL=$own
fi

if ! redis_ok "$REDIS_URL"; then
  own="redis://127.0.0.1:$OWN_REDIS_PORT/0"
  log "no Redis at $REDIS_URL"
  redis_ok "$own" || start_redis
  REDIS_URL=$own
fi

# Browser tests drive Debian's chromium (Playwright cannot download its own browser here).
if ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

# The transport-security tests run deploy/nginx.conf (TLS termination, client certificates) with Debian's nginx.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx
fi

# tests/test_deployment.py validates docker-compose.yml with `docker-compose config` (Debian's package). Without
# root or sudo the test says it is skipped and why; nothing else depends on it.
if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  apt_install docker-compose || log "docker-compose could not be installed: the compose validation test is skipped"
fi

log "PostgreSQL: $PG_URL  Redis: $REDIS_URL"
echo "export DATABASE_URL='$PG_URL' REDIS_URL='$REDIS_URL'"
