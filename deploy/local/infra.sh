#!/usr/bin/env bash
# Everything the suite's tests and benchmarks need, started together (no Docker needed):
# PostgreSQL (deploy/local/pg.sh) and Kafka (deploy/local/kafka.sh).
#
# Usage: deploy/local/infra.sh up|down|status
#   up      start both (each idempotent); print the DSN and the Kafka bootstrap address
#   down    stop both (Kafka first); data stays
#   status  print "postgres: up|down" and "kafka: up|down"; exit 1 if either is down
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

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
