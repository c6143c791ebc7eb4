#!/usr/bin/env bash
# This checkout's own PostgreSQL for development and tests (no Docker needed): a cluster of its
# own (initdb) under data/postgres, run with the machine's PostgreSQL binaries on a port of its
# own (data/ports.env, see deploy/local/ports.sh), so another checkout never sees its data.
#
# Usage: deploy/local/pg.sh up|down|restart|status|dsn|logs [-f]
#   up       create the cluster if missing (initdb), start it, wait until it answers, ensure
#            the role and database exist, print the DSN
#   down     stop it (fast shutdown: sessions are disconnected, nothing committed is lost)
#   restart  down, then up
#   status   print "up" (exit 0) or "down" (exit 1)
#   dsn      print the DSN, e.g. postgresql://okr:okr@127.0.0.1:20130/okr
#   logs     print the end of the server log (`logs -f` follows it)
#
# Overrides: OKR_PG_HOST (127.0.0.1), OKR_PG_PORT (data/ports.env), OKR_PG_USER (okr),
#            OKR_PG_PASSWORD (okr), OKR_PG_DB (okr), OKR_PG_VERSION (15),
#            OKR_PG_BIN (/usr/lib/postgresql/$OKR_PG_VERSION/bin), OKR_PG_DATA (data/postgres),
#            OKR_PG_LOG (data/log/postgres.log), OKR_PG_WAIT (seconds, 60).
#            Relative paths are taken from the repository root.
# Run as root, the server runs as the `postgres` OS user (PostgreSQL refuses root); run as
# another user, it runs as that user. Only 127.0.0.1 (password) and a unix socket in the data
# folder (peer, for this script) accept connections.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=deploy/local/ports.sh
. "$HERE/ports.sh"

abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }

die() { echo "pg.sh: error: $*" >&2; exit 1; }
log() { echo "pg.sh: $*" >&2; }

if [ -z "${OKR_PG_PORT:-}" ]; then load_ports || exit 1; fi
HOST="${OKR_PG_HOST:-127.0.0.1}"
PORT="$OKR_PG_PORT"
USER_NAME="${OKR_PG_USER:-okr}"
PASSWORD="${OKR_PG_PASSWORD:-okr}"
DB="${OKR_PG_DB:-okr}"
VERSION="${OKR_PG_VERSION:-15}"
PG_BIN="${OKR_PG_BIN:-/usr/lib/postgresql/${VERSION}/bin}"
DATA="$(abs "${OKR_PG_DATA:-data/postgres}")"
LOG_FILE="$(abs "${OKR_PG_LOG:-data/log/postgres.log}")"
WAIT="${OKR_PG_WAIT:-60}"

# The OS user the server runs as, and the database superuser it maps to over the socket (peer).
if [ "$(id -u)" -eq 0 ]; then OS_USER=postgres; else OS_USER="$(id -un)"; fi
SUPERUSER="$OS_USER"

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

dsn() { echo "postgresql://${USER_NAME}:${PASSWORD}@${HOST}:${PORT}/${DB}"; }

# The socket lives in the data folder unless that path is too long for a unix socket
# (107 bytes); then in /tmp (the port in its name keeps clusters apart).
socket_dir() {
  if [ $((${#DATA} + 20)) -lt 100 ]; then echo "$DATA"; else echo /tmp; fi
}

need_tools() {
  [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] && [ -x "$PG_BIN/pg_isready" ] \
    || die "PostgreSQL ${VERSION} binaries not found in $PG_BIN; install them: apt-get install -y postgresql-${VERSION}"
  if [ "$(id -u)" -eq 0 ]; then
    id "$OS_USER" >/dev/null 2>&1 \
      || die "no OS user '$OS_USER' to run the server as (apt-get install -y postgresql-${VERSION} creates it)"
  fi
}

pg_ctl() { as_server_user "$PG_BIN/pg_ctl" -D "$DATA" "$@"; }

is_running() { [ -f "$DATA/postmaster.pid" ] && pg_ctl status >/dev/null 2>&1; }

is_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

# The server user must reach the data folder: every folder above it searchable by that user.
check_reachable() {
  local parent
  parent="$(dirname "$DATA")"
  mkdir -p "$parent"
  as_server_user test -x "$parent" \
    || die "the OS user '$OS_USER' cannot reach $parent (a folder above it is not searchable); make it so (chmod o+x) or set OKR_PG_DATA to a folder it can reach"
}

init_cluster() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  check_reachable
  log "creating this checkout's cluster in ${DATA#"$ROOT"/} (PostgreSQL ${VERSION}, port ${PORT})"
  rm -rf "$DATA"
  mkdir -p "$DATA"
  chmod 700 "$DATA"
  [ "$(id -u)" -ne 0 ] || chown "$OS_USER:" "$DATA"
  # The bootstrap superuser is the server's OS user (peer over the socket, for this script);
  # the suite's role is an ordinary owner of its database, as on any server.
  as_server_user "$PG_BIN/initdb" -D "$DATA" -U "$SUPERUSER" --auth-local=peer \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >>"$LOG_FILE" 2>&1 \
    || die "initdb failed; see $LOG_FILE"
  echo "include_if_exists = 'okr.conf'" >>"$DATA/postgresql.conf"
}

# Written on every `up`, so a changed port or socket folder takes effect.
write_config() {
  cat >"$DATA/okr.conf.tmp" <<EOF
# Written by deploy/local/pg.sh on every \`up\`; edit the script, not this file.
port = ${PORT}
listen_addresses = '${HOST}'
unix_socket_directories = '$(socket_dir)'
max_connections = 200
EOF
  [ "$(id -u)" -ne 0 ] || chown "$OS_USER:" "$DATA/okr.conf.tmp"
  mv -f "$DATA/okr.conf.tmp" "$DATA/okr.conf"
}

prepare_log() {
  mkdir -p "$(dirname "$LOG_FILE")"
  touch "$LOG_FILE"
  [ "$(id -u)" -ne 0 ] || chown "$OS_USER:" "$LOG_FILE"
  # Keep the log bounded: one previous generation of at most ~50 MB.
  if [ "$(stat -c %s "$LOG_FILE")" -gt 52428800 ] && ! is_running; then
    mv -f "$LOG_FILE" "$LOG_FILE.1"
    touch "$LOG_FILE"
    [ "$(id -u)" -ne 0 ] || chown "$OS_USER:" "$LOG_FILE"
  fi
}

psql_super() {
  as_server_user "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(socket_dir)" -p "$PORT" \
    -U "$SUPERUSER" -d postgres "$@"
}

cmd_up() {
  need_tools
  prepare_log
  init_cluster
  if is_running; then
    log "cluster already running (${DATA#"$ROOT"/}, port ${PORT})"
  else
    port_open "$PORT" && die "port ${HOST}:${PORT} is taken by another process (not this checkout's PostgreSQL); set OKR_PG_PORT or edit data/ports.env"
    write_config
    log "starting the cluster on ${HOST}:${PORT} (data ${DATA#"$ROOT"/}, log ${LOG_FILE#"$ROOT"/})"
    pg_ctl -l "$LOG_FILE" -w -t "$WAIT" start >/dev/null \
      || die "PostgreSQL did not start; see $LOG_FILE"
  fi

  # Bounded wait until the server accepts TCP connections (it may still be recovering).
  local end=$((SECONDS + WAIT))
  until is_ready; do
    [ "$SECONDS" -lt "$end" ] || die "PostgreSQL not ready on ${HOST}:${PORT} after ${WAIT}s; see $LOG_FILE"
    sleep 0.2
  done

  # Idempotently ensure role (with the expected password) and database exist.
  # psql variables (:'x') quote safely; \gexec runs each generated statement on its own.
  psql_super -v u="$USER_NAME" -v pw="$PASSWORD" -v db="$DB" >/dev/null <<'SQL' \
    || die "could not create role/database; see $LOG_FILE"
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
  if is_running; then
    pg_ctl -m fast -w -t "$WAIT" stop >/dev/null || die "PostgreSQL did not stop; see $LOG_FILE"
    log "stopped the cluster (port ${PORT})"
  else
    log "cluster not running"
  fi
}

cmd_status() {
  if [ -x "$PG_BIN/pg_isready" ] && is_running && is_ready; then
    echo up
  else
    echo down
    return 1
  fi
}

cmd_logs() {
  [ -f "$LOG_FILE" ] || die "no log yet at $LOG_FILE"
  if [ "${1:-}" = "-f" ]; then tail -n 100 -F "$LOG_FILE"; else tail -n 100 "$LOG_FILE"; fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  restart) cmd_down; cmd_up ;;
  status) cmd_status ;;
  dsn) dsn ;;
  logs) cmd_logs "${2:-}" ;;
  *) echo "usage: $0 up|down|restart|status|dsn|logs [-f]" >&2; exit 2 ;;
esac
