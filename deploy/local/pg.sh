#!/usr/bin/env bash
# Local PostgreSQL for development and tests (no Docker needed).
#
# Usage: deploy/local/pg.sh up|down|status|dsn
#   up      start the machine's PostgreSQL cluster (creating it if missing), wait
#           until it answers, ensure role + database exist, print the DSN
#   down    stop the cluster
#   status  print "up" (exit 0) or "down" (exit 1)
#   dsn     print the DSN, e.g. postgresql://okr:okr@127.0.0.1:5432/okr
#
# Overrides: OKR_PG_HOST, OKR_PG_PORT, OKR_PG_USER, OKR_PG_PASSWORD, OKR_PG_DB,
#            OKR_PG_VERSION (15), OKR_PG_CLUSTER (main), OKR_PG_WAIT (seconds, 30).
# Relies on Debian's postgresql-common tools (pg_lsclusters, pg_ctlcluster, ...).
# Must run as root (uses runuser) or as a user with sudo rights.
set -euo pipefail

HOST="${OKR_PG_HOST:-127.0.0.1}"
PORT="${OKR_PG_PORT:-5432}"
USER_NAME="${OKR_PG_USER:-okr}"
PASSWORD="${OKR_PG_PASSWORD:-okr}"
DB="${OKR_PG_DB:-okr}"
VERSION="${OKR_PG_VERSION:-15}"
CLUSTER="${OKR_PG_CLUSTER:-main}"
WAIT="${OKR_PG_WAIT:-30}"

die() { echo "pg.sh: error: $*" >&2; exit 1; }
log() { echo "pg.sh: $*" >&2; }

# Run a command as root (directly, or via sudo when we are not root).
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
# Run a command as the postgres OS user (peer auth over the unix socket).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

dsn() { echo "postgresql://${USER_NAME}:${PASSWORD}@${HOST}:${PORT}/${DB}"; }

need_tools() {
  command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 \
    || die "PostgreSQL tools not found; install them: apt-get install -y postgresql-${VERSION}"
}

# Port of the existing cluster ("" when the cluster does not exist).
cluster_port() {
  pg_lsclusters --no-header 2>/dev/null | awk -v v="$VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $3}'
}

is_running() {
  # pg_ctlcluster status: 0 = running, 3 = not running, 4 = no such cluster
  as_root pg_ctlcluster "$VERSION" "$CLUSTER" status >/dev/null 2>&1
}

is_ready() { pg_isready -q -h "$HOST" -p "$PORT" -t 2; }

cmd_up() {
  need_tools
  local port
  port="$(cluster_port)"
  if [ -z "$port" ]; then
    log "no cluster ${VERSION}/${CLUSTER}; creating it on port ${PORT}"
    as_root pg_createcluster "$VERSION" "$CLUSTER" -p "$PORT" >/dev/null
    port="$PORT"
  fi
  [ "$port" = "$PORT" ] || die "cluster ${VERSION}/${CLUSTER} listens on port ${port}, not OKR_PG_PORT=${PORT}"

  if is_running; then
    log "cluster ${VERSION}/${CLUSTER} already running"
  else
    log "starting cluster ${VERSION}/${CLUSTER}"
    # --skip-systemctl-redirect: behave the same with or without systemd (CI containers have none)
    as_root pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start \
      || die "pg_ctlcluster start failed; see /var/log/postgresql/postgresql-${VERSION}-${CLUSTER}.log"
  fi

  # Bounded wait until the server accepts TCP connections.
  local i=0
  until is_ready; do
    i=$((i + 1))
    [ "$i" -lt "$WAIT" ] || die "PostgreSQL not ready on ${HOST}:${PORT} after ${WAIT}s; see /var/log/postgresql/postgresql-${VERSION}-${CLUSTER}.log"
    sleep 1
  done

  # Idempotently ensure role (with the expected password) and database exist.
  # psql variables (:'x') quote safely; \gexec runs each generated statement on its own.
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres \
    -v u="$USER_NAME" -v pw="$PASSWORD" -v db="$DB" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'u', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'u') \gexec
SQL

  dsn
}

cmd_down() {
  need_tools
  if [ -n "$(cluster_port)" ] && is_running; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" stop
    log "stopped cluster ${VERSION}/${CLUSTER}"
  else
    log "cluster ${VERSION}/${CLUSTER} not running"
  fi
}

cmd_status() {
  if command -v pg_isready >/dev/null 2>&1 && is_ready; then
    echo up
  else
    echo down
    return 1
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  dsn) dsn ;;
  *) echo "usage: $0 up|down|status|dsn" >&2; exit 2 ;;
esac
