#!/usr/bin/env bash
# The distributed stack on one machine (no Docker needed): PostgreSQL and Kafka (infra.sh), then
# the goals API, the goals outbox relay, the event ledger and the notifier, each its own
# background process.
#
# Usage: deploy/local/stack.sh up|down [NAME...]|status|env [auto|on|off]
#   up      infra.sh up; start what is not running yet (a running process is left alone): the
#           goals API (uvicorn, 127.0.0.1:8001, GOALS_PERSISTENCE=postgres), okr-goals-relay,
#           okr-ledger (127.0.0.1:8090) and the notifier (uvicorn, 127.0.0.1:8002,
#           NOTIFIER_PERSISTENCE=postgres, schema notifier, NOTIFIER_FAKE_CLOCK=true); wait until
#           goals and the notifier answer GET /ready, the relay is relaying and the ledger answers
#           GET /health; print what runs where
#   down    stop the four (SIGTERM, then SIGKILL after OKR_STACK_STOP_WAIT s), then infra.sh down;
#           data stays for the next `up`. `down NAME...` stops only those processes (e.g.
#           `down notifier` before `okr-notifier rebuild`) and leaves the rest, PostgreSQL and
#           Kafka running; `up` starts them again
#   status  one line per process: up|down, pid, address; exit 1 if any is down
#   env     print `export GOALS_...`, `export NOTIFIER_...` and `export OKR_KAFKA_...` lines for
#           `eval` so a command (okr token, okr demo, okr-notifier) talks to the stack: `auto`
#           (default) only when the stack's goals API runs, `on` always, `off` never (prints
#           nothing)
#
# The JWT secret is generated once into data/stack/jwt_secret (git-ignored) and reused; goals and
# the notifier both verify tokens with it, so one `make token` works for both.
# Pid files: data/run/<name>.pid; logs: data/log/<name>.log (names: goals, goals-relay, ledger,
# notifier).
# Overrides: OKR_STACK_HOST (127.0.0.1), OKR_STACK_GOALS_PORT (8001), OKR_LEDGER_HTTP_PORT (8090),
#            OKR_STACK_NOTIFIER_PORT (8002), OKR_STACK_WAIT (seconds, 60), OKR_STACK_STOP_WAIT
#            (seconds, 20); pg.sh's OKR_PG_* and kafka.sh's OKR_KAFKA_HOST/PORT; any GOALS_*,
#            NOTIFIER_*, OKR_KAFKA_*, OKR_LEDGER_* setting set in the environment is passed on to
#            the processes (except the few the stack sets: see goals_env and notifier_env).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/.venv/bin"
RUN="$ROOT/data/run"
LOGS="$ROOT/data/log"
SECRET_FILE="$ROOT/data/stack/jwt_secret"

HOST="${OKR_STACK_HOST:-127.0.0.1}"
GOALS_PORT="${OKR_STACK_GOALS_PORT:-8001}"
LEDGER_PORT="${OKR_LEDGER_HTTP_PORT:-8090}"
NOTIFIER_PORT="${OKR_STACK_NOTIFIER_PORT:-8002}"
WAIT="${OKR_STACK_WAIT:-60}"
STOP_WAIT="${OKR_STACK_STOP_WAIT:-20}"

PG_HOST="${OKR_PG_HOST:-127.0.0.1}"
PG_PORT="${OKR_PG_PORT:-5432}"
PG_USER="${OKR_PG_USER:-okr}"
PG_PASSWORD="${OKR_PG_PASSWORD:-okr}"
PG_DB="${OKR_PG_DB:-okr}"
KAFKA_BOOTSTRAP="${OKR_KAFKA_BOOTSTRAP_SERVERS:-${OKR_KAFKA_HOST:-127.0.0.1}:${OKR_KAFKA_PORT:-9092}}"

NAMES=(goals goals-relay ledger notifier)

die() { echo "stack.sh: error: $*" >&2; exit 1; }
log() { echo "stack.sh: $*" >&2; }

need_venv() {
  local exe
  for exe in python uvicorn okr-goals-relay okr-ledger okr-notifier; do
    [ -x "$BIN/$exe" ] || die "$BIN/$exe not found; run \`make install\` first"
  done
  command -v curl >/dev/null 2>&1 || die "curl not found; install it: apt-get install -y curl"
}

# The string that identifies each process in /proc/<pid>/cmdline.
marker() {
  case "$1" in
    goals) echo "okr_goals.main:create_app" ;;
    goals-relay) echo "okr-goals-relay" ;;
    ledger) echo "okr-ledger" ;;
    notifier) echo "okr_notifier.main:create_app" ;;
  esac
}

port_of() {
  case "$1" in
    goals) echo "$GOALS_PORT" ;;
    ledger) echo "$LEDGER_PORT" ;;
    notifier) echo "$NOTIFIER_PORT" ;;
    *) echo "" ;;
  esac
}

address_of() {
  case "$1" in
    goals) echo "http://${HOST}:${GOALS_PORT}" ;;
    goals-relay) echo "-> ${GOALS_EVENTS_TOPIC:-okr.goals.events.v1}" ;;
    ledger) echo "http://${HOST}:${LEDGER_PORT}" ;;
    notifier) echo "http://${HOST}:${NOTIFIER_PORT}" ;;
  esac
}

pid_file() { echo "$RUN/$1.pid"; }
log_file() { echo "$LOGS/$1.log"; }
pid() { local f; f="$(pid_file "$1")"; [ -s "$f" ] && cat "$f"; }

# Our process is running: its pid file names a live process with the expected command line.
is_running() {
  local p
  p="$(pid "$1")" || return 1
  kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$(marker "$1")"
}

port_open() { (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

ensure_secret() {
  if [ ! -s "$SECRET_FILE" ]; then
    mkdir -p "$(dirname "$SECRET_FILE")"
    (umask 077; openssl rand -hex 32 >"$SECRET_FILE.tmp") || die "openssl rand failed"
    mv -f "$SECRET_FILE.tmp" "$SECRET_FILE"
    log "generated the stack's JWT secret into ${SECRET_FILE#"$ROOT"/}"
  fi
}

# The settings of the goals processes (API, relay, `okr token`, `okr demo`) in the stack: always
# PostgreSQL and the stack's secret; exported GOALS_POSTGRES_* values win.
goals_env() {
  echo "GOALS_PERSISTENCE=postgres"
  echo "GOALS_JWT_SECRET=$(cat "$SECRET_FILE")"
  echo "GOALS_POSTGRES_HOST=${GOALS_POSTGRES_HOST:-$PG_HOST}"
  echo "GOALS_POSTGRES_PORT=${GOALS_POSTGRES_PORT:-$PG_PORT}"
  echo "GOALS_POSTGRES_DBNAME=${GOALS_POSTGRES_DBNAME:-$PG_DB}"
  echo "GOALS_POSTGRES_USER=${GOALS_POSTGRES_USER:-$PG_USER}"
  echo "GOALS_POSTGRES_PASSWORD=${GOALS_POSTGRES_PASSWORD:-$PG_PASSWORD}"
}

# The notifier's settings in the stack: PostgreSQL (its own schema `notifier`, which
# pair_with_kafka resets; a small pool), the stack's secret (the goals API's, so one token works
# for both) and a fake clock (development: PUT /admin/clock by an admin travels to tomorrow's
# daily check; the scheduler ticks every 5 s so the travel is seen within seconds) and webhooks
# allowed to call http:// and private addresses (a receiver on this machine; off elsewhere).
# The key its webhooks' secrets are encrypted with is derived from the stack's secret (HMAC, so
# it stays the same across restarts while data/stack/jwt_secret does).
# Exported NOTIFIER_POSTGRES_* (except the schema), NOTIFIER_FAKE_CLOCK,
# NOTIFIER_SCHEDULER_TICK_SECONDS, NOTIFIER_POSTGRES_POOL_SIZE,
# NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS and NOTIFIER_WEBHOOK_SECRET_KEYS values win.
notifier_env() {
  echo "NOTIFIER_PERSISTENCE=postgres"
  echo "NOTIFIER_JWT_SECRET=$(cat "$SECRET_FILE")"
  echo "NOTIFIER_WEBHOOK_SECRET_KEYS=${NOTIFIER_WEBHOOK_SECRET_KEYS:-$(printf %s okr-notifier-webhook-secret-keys | openssl dgst -sha256 -hmac "$(cat "$SECRET_FILE")" -binary | base64 | tr '+/' '-_')}"
  echo "NOTIFIER_POSTGRES_HOST=${NOTIFIER_POSTGRES_HOST:-$PG_HOST}"
  echo "NOTIFIER_POSTGRES_PORT=${NOTIFIER_POSTGRES_PORT:-$PG_PORT}"
  echo "NOTIFIER_POSTGRES_DBNAME=${NOTIFIER_POSTGRES_DBNAME:-$PG_DB}"
  echo "NOTIFIER_POSTGRES_USER=${NOTIFIER_POSTGRES_USER:-$PG_USER}"
  echo "NOTIFIER_POSTGRES_PASSWORD=${NOTIFIER_POSTGRES_PASSWORD:-$PG_PASSWORD}"
  echo "NOTIFIER_POSTGRES_SCHEMA=notifier"
  echo "NOTIFIER_POSTGRES_POOL_SIZE=${NOTIFIER_POSTGRES_POOL_SIZE:-2}"
  echo "NOTIFIER_FAKE_CLOCK=${NOTIFIER_FAKE_CLOCK:-true}"
  echo "NOTIFIER_SCHEDULER_TICK_SECONDS=${NOTIFIER_SCHEDULER_TICK_SECONDS:-5}"
  echo "NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS=${NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS:-true}"
}

ledger_env() {
  echo "OKR_LEDGER_POSTGRES_CONNINFO=${OKR_LEDGER_POSTGRES_CONNINFO:-host=$PG_HOST port=$PG_PORT dbname=$PG_DB user=$PG_USER password=$PG_PASSWORD}"
  echo "OKR_LEDGER_HTTP_HOST=${OKR_LEDGER_HTTP_HOST:-$HOST}"
  echo "OKR_LEDGER_HTTP_PORT=$LEDGER_PORT"
}

# start NAME ENV_FILE COMMAND...: in the background, in its own session, outliving this script,
# with the settings (NAME=value lines) in ENV_FILE added to the environment. bash writes its pid and then becomes the command (exec),
# so the pid file names the process itself.
start() {
  local name="$1" env_file="$2"; shift 2
  local lf port
  local -a settings
  mapfile -t settings <"$env_file"
  lf="$(log_file "$name")"
  port="$(port_of "$name")"
  if [ -n "$port" ] && port_open "$port"; then
    die "port ${HOST}:${port} is taken by another process (not the stack's $name: no live pid in ${RUN#"$ROOT"/}/$name.pid)"
  fi
  rm -f "$(pid_file "$name")"
  mkdir -p "$RUN" "$LOGS"
  if [ -f "$lf" ] && [ "$(stat -c %s "$lf")" -gt 52428800 ]; then mv -f "$lf" "$lf.1"; fi
  echo "==== $(date -Is) stack.sh up ====" >>"$lf"
  log "starting $name (log ${lf#"$ROOT"/})"
  # The background subshell becomes setsid (exec) with every descriptor redirected, so nothing
  # of this script (e.g. the pipe of `make up | tee`) stays open in the long-running process.
  # shellcheck disable=SC2016
  (cd "$ROOT" && exec setsid nohup env "${settings[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' \
    _ "$(pid_file "$name")" "$@") </dev/null >>"$lf" 2>&1 &
  local i=0
  until [ -s "$(pid_file "$name")" ]; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || die "$name did not write its pid file"
    sleep 0.1
  done
}

# wait_for NAME CHECK...: until CHECK succeeds; fails early when the process dies.
wait_for() {
  local name="$1"; shift
  local end=$((SECONDS + WAIT))
  until "$@"; do
    if ! is_running "$name"; then
      tail -n 20 "$(log_file "$name")" >&2 || true
      die "$name exited during start-up; see $(log_file "$name")"
    fi
    [ "$SECONDS" -lt "$end" ] || die "$name not ready after ${WAIT}s; see $(log_file "$name")"
    sleep 0.2
  done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# The relay logs "relaying <app> from notification N to <topic>" once its topics exist and it
# follows the event store; RELAY_LOG_OFFSET is the log's size before it was started.
RELAY_LOG_OFFSET=0
relay_started() { tail -c +$((RELAY_LOG_OFFSET + 1)) "$(log_file goals-relay)" | grep -q 'relaying '; }

# PostgreSQL is the machine's, Kafka's data is this checkout's (data/kafka). The goals store,
# the relay's position and the ledger's positions only make sense with the topic they were
# written against, so the stack records the Kafka cluster id in PostgreSQL; when it meets a
# different Kafka (a fresh clone, a wiped data/), it resets the stack's schemas (goals, ledger,
# notifier) rather than leave a relay position that skips events or consumer positions past the
# end of the topic.
pair_with_kafka() {
  local cluster_id recorded
  export PGOPTIONS="-c client_min_messages=warning"  # no NOTICE per dropped table
  local dsn="postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB"
  cluster_id="$(cat "$ROOT/data/kafka/cluster.id" 2>/dev/null || true)"
  [ -n "$cluster_id" ] || return 0
  psql -q "$dsn" -v ON_ERROR_STOP=1 -c "CREATE SCHEMA IF NOT EXISTS stack; CREATE TABLE IF NOT EXISTS stack.kafka (cluster_id text NOT NULL)" >/dev/null
  recorded="$(psql -qtA "$dsn" -c "SELECT cluster_id FROM stack.kafka LIMIT 1")"
  if [ "$recorded" != "$cluster_id" ]; then
    if [ -n "$recorded" ] || psql -qtA "$dsn" -c "SELECT 1 FROM pg_namespace WHERE nspname IN ('goals', 'ledger', 'notifier')" | grep -q 1; then
      log "this Kafka ($cluster_id) is not the one the stack's schemas were written against; resetting schemas goals, ledger and notifier"
    fi
    psql -q "$dsn" -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS goals CASCADE; DROP SCHEMA IF EXISTS ledger CASCADE; DROP SCHEMA IF EXISTS notifier CASCADE; DELETE FROM stack.kafka; INSERT INTO stack.kafka VALUES ('$cluster_id')" >/dev/null
  fi
}

cmd_up() {
  need_venv
  local t0="$EPOCHREALTIME" t1 goals_settings ledger_settings notifier_settings
  "$HERE/infra.sh" up >/dev/null
  t1="$EPOCHREALTIME"
  ensure_secret
  if ! is_running goals && ! is_running goals-relay && ! is_running ledger \
    && ! is_running notifier; then
    pair_with_kafka
  fi
  goals_settings="$(mktemp)"; ledger_settings="$(mktemp)"; notifier_settings="$(mktemp)"
  # shellcheck disable=SC2064
  trap "rm -f '$goals_settings' '$ledger_settings' '$notifier_settings'" EXIT
  { goals_env; echo "OKR_KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP"; } >"$goals_settings"
  { ledger_env; echo "OKR_KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP"; } >"$ledger_settings"
  { notifier_env; echo "OKR_KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP"; } >"$notifier_settings"

  # The API first: it creates the goals schema and tables, which the relay then shares. The
  # ledger and the notifier (each its own schema, each its own consumer group) start alongside.
  if is_running goals; then log "goals already running (pid $(pid goals))"; else
    start goals "$goals_settings" "$BIN/uvicorn" --factory okr_goals.main:create_app \
      --host "$HOST" --port "$GOALS_PORT" --no-access-log
  fi
  if is_running ledger; then log "ledger already running (pid $(pid ledger))"; else
    start ledger "$ledger_settings" "$BIN/okr-ledger"
  fi
  if is_running notifier; then log "notifier already running (pid $(pid notifier))"; else
    start notifier "$notifier_settings" "$BIN/uvicorn" --factory okr_notifier.main:create_app \
      --host "$HOST" --port "$NOTIFIER_PORT" --no-access-log --timeout-graceful-shutdown 5
  fi
  wait_for goals http_ok "http://${HOST}:${GOALS_PORT}/ready"
  if is_running goals-relay; then log "goals-relay already running (pid $(pid goals-relay))"; else
    RELAY_LOG_OFFSET="$(stat -c %s "$(log_file goals-relay)" 2>/dev/null || echo 0)"
    start goals-relay "$goals_settings" "$BIN/okr-goals-relay"
    wait_for goals-relay relay_started
  fi
  wait_for ledger http_ok "http://${HOST}:${LEDGER_PORT}/health"
  wait_for notifier http_ok "http://${HOST}:${NOTIFIER_PORT}/ready"
  log "$(awk -v a="$t0" -v b="$t1" -v c="$EPOCHREALTIME" \
    'BEGIN { printf "up in %.1f s (PostgreSQL and Kafka %.1f s, services %.1f s)", c - a, b - a, c - b }')"
  cmd_status
}

# wait_gone NAME PID: until the process has exited; SIGKILL after OKR_STACK_STOP_WAIT seconds.
wait_gone() {
  local name="$1" p="$2" i=0
  while kill -0 "$p" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge $((STOP_WAIT * 5)) ]; then
      log "$name still running after ${STOP_WAIT}s; sending SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  log "stopped $name (pid $p)"
}

# cmd_down [NAME...]: without names, every process of the stack, then PostgreSQL and Kafka;
# with names, only those processes.
cmd_down() {
  local name
  local -a names=("${NAMES[@]}")
  local -A pids=()
  if [ "$#" -gt 0 ]; then
    for name in "$@"; do
      [ -n "$(marker "$name")" ] || die "down: unknown process '$name' (one of: ${NAMES[*]})"
    done
    names=("$@")
  fi
  # SIGTERM to all at once (each shuts down on its own), then wait for each.
  for name in "${names[@]}"; do
    if is_running "$name"; then
      pids[$name]="$(pid "$name")"
      log "stopping $name (pid ${pids[$name]})"
      kill -TERM "${pids[$name]}" 2>/dev/null || true
    else
      log "$name not running"
    fi
  done
  for name in "${names[@]}"; do
    [ -z "${pids[$name]:-}" ] || wait_gone "$name" "${pids[$name]}"
    rm -f "$(pid_file "$name")"
  done
  [ "$#" -gt 0 ] || "$HERE/infra.sh" down
}

cmd_status() {
  local rc=0 name state p kafka_pid
  printf '%-12s %-5s %-8s %-28s %s\n' process state pid address log
  for name in "${NAMES[@]}"; do
    p=-
    if is_running "$name"; then state=up; p="$(pid "$name")"; else state=down; rc=1; fi
    printf '%-12s %-5s %-8s %-28s %s\n' "$name" "$state" "$p" "$(address_of "$name")" \
      "data/log/$name.log"
  done
  state=up; "$HERE/pg.sh" status >/dev/null 2>&1 || { state=down; rc=1; }
  printf '%-12s %-5s %-8s %-28s %s\n' postgres "$state" - "${PG_HOST}:${PG_PORT}" \
    "/var/log/postgresql/postgresql-${OKR_PG_VERSION:-15}-${OKR_PG_CLUSTER:-main}.log"
  state=up; kafka_pid=-
  if "$HERE/kafka.sh" status >/dev/null 2>&1; then
    kafka_pid="$(cat "$ROOT/data/kafka/kafka.pid" 2>/dev/null || echo -)"
  else
    state=down; rc=1
  fi
  printf '%-12s %-5s %-8s %-28s %s\n' kafka "$state" "$kafka_pid" "$KAFKA_BOOTSTRAP" "data/log/kafka.log"
  return "$rc"
}

cmd_env() {
  local mode="${1:-auto}" line
  case "$mode" in
    off) return 0 ;;
    auto) is_running goals || return 0 ;;
    on) [ -s "$SECRET_FILE" ] || die "no stack secret yet in ${SECRET_FILE#"$ROOT"/}; run \`make up\` once" ;;
    *) die "env: expected auto, on or off, not '$mode'" ;;
  esac
  while IFS= read -r line; do
    printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
  done < <(goals_env; notifier_env; echo "OKR_KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP")
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env "${2:-auto}" ;;
  *) echo "usage: $0 up|down [NAME...]|status|env [auto|on|off]" >&2; exit 2 ;;
esac
