#!/usr/bin/env bash
# Everything the suite's tests and benchmarks need, started together (no Docker needed):
# PostgreSQL (deploy/local/pg.sh) and Kafka (deploy/local/kafka.sh).
#
# Both are this checkout's own (data/postgres, data/kafka; ports in data/ports.env).
#
# Usage: deploy/local/infra.sh up|down|status|env
#   up      start both (each idempotent); print the DSN and the Kafka bootstrap address
#   down    stop both (Kafka first); data stays
#   status  print "postgres: up|down" and "kafka: up|down"; exit 1 if either is down
#   env     print `export OKR_PG_*=...` and `export OKR_KAFKA_BOOTSTRAP_SERVERS=...` lines for
#           `eval`, so a program reading them (the benchmarks) finds this checkout's servers
# Each script's OKR_PG_* / OKR_KAFKA_* overrides apply.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG="$HERE/pg.sh"
KAFKA="$HERE/kafka.sh"

cmd_up() {
  "$PG" up
  "$KAFKA" up
}

cmd_down() {
  local rc=0
  "$KAFKA" down || rc=1
  "$PG" down || rc=1
  return "$rc"
}

cmd_status() {
  local rc=0 pg kafka
  pg="$("$PG" status 2>/dev/null)" || rc=1
  kafka="$("$KAFKA" status 2>/dev/null)" || rc=1
  echo "postgres: ${pg:-down}"
  echo "kafka: ${kafka:-down}"
  return "$rc"
}

cmd_env() {
  local dsn
  dsn="$("$PG" dsn)"
  # postgresql://user:password@host:port/db, as pg.sh prints it
  local rest="${dsn#postgresql://}"
  local user="${rest%%:*}" password="${rest#*:}"
  password="${password%%@*}"
  local hostport="${rest#*@}"
  hostport="${hostport%%/*}"
  printf 'export OKR_PG_HOST=%q OKR_PG_PORT=%q OKR_PG_USER=%q OKR_PG_PASSWORD=%q OKR_PG_DB=%q\n' \
    "${hostport%%:*}" "${hostport##*:}" "$user" "$password" "${dsn##*/}"
  printf 'export OKR_KAFKA_BOOTSTRAP_SERVERS=%q\n' "$("$KAFKA" bootstrap)"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
