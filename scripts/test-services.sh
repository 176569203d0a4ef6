#!/usr/bin/env bash
# Make sure the services the test suite needs are running on loopback, and print the
# environment that points the tests at them. Idempotent: reuses what is already running.
#
#   eval "$(scripts/test-services.sh)"
#
# Postgres and Redis come from Debian's packages (installed here when missing and we are
# root); each gets a throwaway data folder under var/ and a port of its own, so they never
# touch a system-wide instance.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
var="${BUTLER_VAR_DIR:-$root/var}"
pg_port="${BUTLER_TEST_PG_PORT:-54329}"
redis_port="${BUTLER_TEST_REDIS_PORT:-63799}"
mkdir -p "$var"

log() { echo "test-services: $*" >&2; }

install_if_missing() {  # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/lib/postgresql/15/bin/$1" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "$1 is missing; install the Debian package '$2' (needs root)."
    exit 1
  fi
  log "installing $2 from Debian's packages"
  # 'apt-get update' only when the package lists are empty or too old to know the package.
  apt-cache show "$2" >/dev/null 2>&1 || apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
}

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  echo "${found:-/usr/lib/postgresql/15/bin}"
}

start_postgres() {
  install_if_missing initdb postgresql
  local bin data run_as
  bin=$(pg_bin)
  data="$var/postgres"
  run_as=()
  # Postgres refuses to run as root: run it as the package's own 'postgres' user.
  if [ "$(id -u)" = 0 ]; then
    run_as=(runuser -u postgres --)
    mkdir -p "$data" && chown postgres:postgres "$data"
  fi
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port"; then
    return 0
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a Postgres cluster in $data"
    "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  log "starting Postgres on 127.0.0.1:$pg_port"
  # fsync off: test data is disposable and the suite creates databases often.
  "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
    -o "-h 127.0.0.1 -p $pg_port -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
}

start_redis() {
  install_if_missing redis-server redis-server
  if redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    return 0
  fi
  log "starting Redis on 127.0.0.1:$redis_port"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --daemonize yes --logfile "$var/redis.log" --dir "$var" >/dev/null
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "Redis did not come up; see $var/redis.log"
  exit 1
}

stop_all() {
  local bin
  bin=$(pg_bin)
  if [ -f "$var/postgres/postmaster.pid" ]; then
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$bin/pg_ctl" -D "$var/postgres" -m fast stop >/dev/null || true
    else
      "$bin/pg_ctl" -D "$var/postgres" -m fast stop >/dev/null || true
    fi
  fi
  redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start)
    start_postgres
    start_redis
    echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/butler_portal"
    echo "export REDIS_URL=redis://127.0.0.1:$redis_port/0"
    ;;
  stop) stop_all ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
