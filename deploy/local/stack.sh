#!/usr/bin/env bash
# The distributed stack on one machine (no Docker needed): PostgreSQL and Kafka (infra.sh), then
# the goals API, the goals outbox relay, the event ledger and the notifier, each its own
# background process.
#
# Usage: deploy/local/stack.sh up|down [NAME...]|status|env [auto|on|off]
#   up      infra.sh up (this checkout's own PostgreSQL and Kafka); start what is not running
#           (a dead process, a stale pid file) and restart what runs but stays not ready for
#           OKR_STACK_READY_GRACE s; a running, ready process is left alone: the goals API
#           (uvicorn, 127.0.0.1:8001, GOALS_PERSISTENCE=postgres), okr-goals-relay, okr-ledger
#           (127.0.0.1:8090) and the notifier (uvicorn, 127.0.0.1:8002,
#           NOTIFIER_PERSISTENCE=postgres, schema notifier, NOTIFIER_FAKE_CLOCK=true); wait until
#           goals and the notifier answer GET /ready, the relay is relaying and the ledger answers
#           GET /ready; print what runs where
#   down    stop the four (SIGTERM, then SIGKILL after OKR_STACK_STOP_WAIT s), then infra.sh down;
#           data stays for the next `up`. `down NAME...` stops only those processes (e.g.
#           `down notifier` before `okr-notifier rebuild`) and leaves the rest, PostgreSQL and
#           Kafka running; `up` starts them again
#   status  one line per process: state (up: its pid lives; down), readiness (`ready`,
#           `not ready (reason)` or `down`: GET /ready of goals, the notifier and the ledger; the
#           relay's lag behind the goals store), pid, address, log; exit 1 if any is down or not
#           ready
#   env     print `export GOALS_...`, `export NOTIFIER_...` and `export OKR_KAFKA_...` lines for
#           `eval` so a command (okr token, okr demo, okr-notifier) talks to the stack: `auto`
#           (default) only when the stack's goals API runs, `on` always, `off` never (prints
#           nothing)
#
# The JWT secret is generated once into data/stack/jwt_secret (git-ignored) and reused; goals and
# the notifier both verify tokens with it, so one `make token` works for both.
# Pid files: data/run/<name>.pid; logs: data/log/<name>.log (names: goals, goals-relay, ledger,
# notifier).
# The HTTP ports are this checkout's data/ports.env (8001, 8002, 8090 unless edited there), as
# are PostgreSQL's and Kafka's (deploy/local/ports.sh).
# Overrides: OKR_STACK_HOST (127.0.0.1), OKR_STACK_GOALS_PORT, OKR_LEDGER_HTTP_PORT,
#            OKR_STACK_NOTIFIER_PORT (data/ports.env), OKR_STACK_WAIT (seconds, 60),
#            OKR_STACK_READY_GRACE (seconds, 10), OKR_STACK_STOP_WAIT (seconds, 20); pg.sh's
#            OKR_PG_* and kafka.sh's OKR_KAFKA_HOST/PORT; any GOALS_*,
#            NOTIFIER_*, OKR_KAFKA_*, OKR_LEDGER_* setting set in the environment is passed on to
#            the processes (except the few the stack sets: see goals_env and notifier_env).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/.venv/bin"
RUN="$ROOT/data/run"
LOGS="$ROOT/data/log"
SECRET_FILE="$ROOT/data/stack/jwt_secret"
PAIRED_FILE="$ROOT/data/kafka/stack-postgres.id"  # the PostgreSQL the stack's topics belong to
# shellcheck source=deploy/local/ports.sh
. "$HERE/ports.sh"
load_ports || exit 1

HOST="${OKR_STACK_HOST:-127.0.0.1}"
GOALS_PORT="$OKR_STACK_GOALS_PORT"
LEDGER_PORT="$OKR_LEDGER_HTTP_PORT"
NOTIFIER_PORT="$OKR_STACK_NOTIFIER_PORT"
WAIT="${OKR_STACK_WAIT:-60}"
READY_GRACE="${OKR_STACK_READY_GRACE:-10}"
STOP_WAIT="${OKR_STACK_STOP_WAIT:-20}"

PG_HOST="${OKR_PG_HOST:-127.0.0.1}"
PG_PORT="$OKR_PG_PORT"
PG_USER="${OKR_PG_USER:-okr}"
PG_PASSWORD="${OKR_PG_PASSWORD:-okr}"
PG_DB="${OKR_PG_DB:-okr}"
PG_BIN="${OKR_PG_BIN:-/usr/lib/postgresql/${OKR_PG_VERSION:-15}/bin}"
KAFKA_BOOTSTRAP="${OKR_KAFKA_BOOTSTRAP_SERVERS:-${OKR_KAFKA_HOST:-127.0.0.1}:${OKR_KAFKA_PORT}}"
PG_DSN="postgresql://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB"
GOALS_SCHEMA="${GOALS_POSTGRES_SCHEMA:-goals}"
LEDGER_SCHEMA="${OKR_LEDGER_POSTGRES_SCHEMA:-ledger}"

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

ready_url() {
  case "$1" in
    goals) echo "http://${HOST}:${GOALS_PORT}/ready" ;;
    ledger) echo "http://${HOST}:${LEDGER_PORT}/ready" ;;
    notifier) echo "http://${HOST}:${NOTIFIER_PORT}/ready" ;;
  esac
}

# The reason a /ready answer gives for not being ready (problem+json `contexts`, the ledger's
# `reason`), on one line.
not_ready_reason() {
  "$BIN/python" -S -c '
import json, sys
try:
    body = json.loads(sys.stdin.read())
except ValueError:
    sys.exit()
if isinstance(body.get("contexts"), dict):
    print(", ".join(f"{name} not ready" for name, ok in body["contexts"].items() if not ok))
else:
    print(body.get("reason") or body.get("status") or "")
' 2>/dev/null | head -c 120
}

# readiness NAME: `ready`, `not ready (reason)` or `down`, from the process's own answer.
readiness() {
  local name="$1" out code body reason lag
  is_running "$name" || { echo down; return; }
  if [ "$name" = goals-relay ]; then
    relay_readiness
    return
  fi
  out="$(curl -sS --max-time 3 -w '\n%{http_code}' "$(ready_url "$name")" 2>/dev/null)" || {
    echo "not ready (no answer on :$(port_of "$name"))"
    return
  }
  code="${out##*$'\n'}"
  body="${out%$'\n'*}"
  if [ "$code" = 200 ]; then echo ready; return; fi
  reason="$(printf %s "$body" | not_ready_reason)"
  echo "not ready (${reason:-HTTP $code})"
}

# The relay has no HTTP endpoint: it is ready when its recorded position has reached the end of
# the goals store (a relay waiting for PostgreSQL, or one that stopped, falls behind).
relay_readiness() {
  local lag
  if ! "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2 2>/dev/null; then
    echo "not ready (PostgreSQL down)"
    return
  fi
  lag="$("$PG_BIN/psql" -X -qtA "$PG_DSN" -v s="$GOALS_SCHEMA" 2>/dev/null <<'SQL'
SELECT format('SELECT (SELECT coalesce(max(notification_id), 0) FROM %1$I.goals_events)
  - (SELECT coalesce(max(notification_id), 0) FROM %1$I.goals_relay_tracking)', :'s') \gexec
SQL
)" || { echo "not ready (no recorded position yet)"; return; }
  if [ "${lag:-0}" -le 0 ]; then echo ready; else echo "not ready ($lag events not yet published)"; fi
}

is_ready() { [ "$(readiness "$1")" = ready ]; }

# must_start NAME: whether `up` has to (re)start NAME. A process that is not running is started
# (its stale pid file removed); one that runs and is ready is left alone; one that runs but
# stays not ready for OKR_STACK_READY_GRACE s is stopped so it is started again. A running relay
# is always left alone (it resumes by itself after an outage; a backlog is not a fault).
must_start() {
  local name="$1" end
  is_running "$name" || return 0
  if [ "$name" = goals-relay ]; then
    log "$name already running (pid $(pid "$name"))"
    return 1
  fi
  end=$((SECONDS + READY_GRACE))
  until is_ready "$name"; do
    if [ "$SECONDS" -ge "$end" ]; then
      log "$name runs (pid $(pid "$name")) but is $(readiness "$name") after ${READY_GRACE}s; restarting it"
      stop_one "$name"
      return 0
    fi
    sleep 0.5
  done
  log "$name already running and ready (pid $(pid "$name"))"
  return 1
}

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

# The relay logs "relaying <app> from notification N to <topic>" once its topics exist and it
# follows the event store; RELAY_LOG_OFFSET is the log's size before it was started.
RELAY_LOG_OFFSET=0
relay_started() { tail -c +$((RELAY_LOG_OFFSET + 1)) "$(log_file goals-relay)" | grep -q 'relaying '; }

# The stack's data is a pair: its schemas in this checkout's PostgreSQL (goals' events and the
# relay's position, the ledger's and the notifier's tables and positions) and its topics in this
# checkout's Kafka (okr.*). Either half is only meaningful with the other: a relay position
# against another topic skips events, consumer positions past the end of a recreated topic are
# refused. So the stack records the pairing on both sides (a token in PostgreSQL's
# stack.pairing with the Kafka cluster id, the same token in data/kafka/stack-postgres.id); when
# they do not match (a wiped data/postgres or data/kafka, changed OKR_PG_*/OKR_KAFKA_* settings)
# it resets both halves: schemas goals, ledger and notifier dropped, okr.* topics deleted. Both
# are this checkout's own, so no other checkout's data is ever touched.
pair_with_kafka() {
  local cluster_id recorded legacy file_token has_schemas
  export PGOPTIONS="-c client_min_messages=warning"  # no NOTICE per dropped table
  cluster_id="$(cat "$ROOT/data/kafka/cluster.id" 2>/dev/null || true)"
  [ -n "$cluster_id" ] || return 0
  "$PG_BIN/psql" -X -q "$PG_DSN" -v ON_ERROR_STOP=1 -c "CREATE SCHEMA IF NOT EXISTS stack; CREATE TABLE IF NOT EXISTS stack.pairing (kafka_cluster_id text NOT NULL, token text NOT NULL)" >/dev/null
  recorded="$("$PG_BIN/psql" -X -qtA "$PG_DSN" -c "SELECT kafka_cluster_id || ' ' || token FROM stack.pairing LIMIT 1")"
  file_token="$(cat "$PAIRED_FILE" 2>/dev/null || true)"
  if [ -n "$recorded" ] && [ "$recorded" = "$cluster_id $file_token" ]; then
    return 0
  fi
  # Written before the pairing was recorded on both sides: stack.kafka holds the cluster id
  # alone. When it is this Kafka's, the pair is adopted as it is.
  legacy="$("$PG_BIN/psql" -X -qtA "$PG_DSN" -c "SELECT cluster_id FROM stack.kafka LIMIT 1" 2>/dev/null || true)"
  "$PG_BIN/psql" -X -q "$PG_DSN" -c "DROP TABLE IF EXISTS stack.kafka" >/dev/null
  if [ -z "$recorded" ] && [ -n "$legacy" ] && [ "$legacy" = "$cluster_id" ]; then
    record_pairing "$cluster_id"
    return 0
  fi
  has_schemas="$("$PG_BIN/psql" -X -qtA "$PG_DSN" -v goals="$GOALS_SCHEMA" -v ledger="$LEDGER_SCHEMA" <<'SQL'
SELECT count(*) FROM pg_namespace WHERE nspname IN (:'goals', :'ledger', 'notifier')
SQL
)"
  if [ "${has_schemas:-0}" != 0 ]; then
    log "the stack's schemas in PostgreSQL ($PG_HOST:$PG_PORT) were not written against this Kafka's topics ($cluster_id); dropping schemas $GOALS_SCHEMA, $LEDGER_SCHEMA and notifier"
  fi
  "$PG_BIN/psql" -X -q "$PG_DSN" -v ON_ERROR_STOP=1 -v goals="$GOALS_SCHEMA" -v ledger="$LEDGER_SCHEMA" >/dev/null <<'SQL'
SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', :'goals') \gexec
SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', :'ledger') \gexec
DROP SCHEMA IF EXISTS notifier CASCADE;
DELETE FROM stack.pairing;
SQL
  "$BIN/python" - "$KAFKA_BOOTSTRAP" <<'PY' >&2 || die "could not delete the stack's topics in Kafka"
import sys, time
from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0})
names = [t for t in admin.list_topics(timeout=10).topics if t.startswith("okr.")]
if names:
    print(f"stack.sh: the stack's topics in Kafka were not written against this PostgreSQL; deleting {', '.join(sorted(names))}")
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result()
    deadline = time.monotonic() + 30
    while set(names) & set(admin.list_topics(timeout=10).topics):
        if time.monotonic() > deadline:
            sys.exit("topics still listed 30 s after their deletion")
        time.sleep(0.2)
PY
  record_pairing "$cluster_id"
}

# record_pairing CLUSTER_ID: a new token on both sides.
record_pairing() {
  local token
  token="$(openssl rand -hex 16)"
  "$PG_BIN/psql" -X -q "$PG_DSN" -v ON_ERROR_STOP=1 -v k="$1" -v t="$token" >/dev/null <<'SQL'
DELETE FROM stack.pairing;
INSERT INTO stack.pairing VALUES (:'k', :'t');
SQL
  echo "$token" >"$PAIRED_FILE"
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
  if must_start goals; then
    start goals "$goals_settings" "$BIN/uvicorn" --factory okr_goals.main:create_app \
      --host "$HOST" --port "$GOALS_PORT" --no-access-log
  fi
  if must_start ledger; then
    start ledger "$ledger_settings" "$BIN/okr-ledger"
  fi
  if must_start notifier; then
    start notifier "$notifier_settings" "$BIN/uvicorn" --factory okr_notifier.main:create_app \
      --host "$HOST" --port "$NOTIFIER_PORT" --no-access-log --timeout-graceful-shutdown 5
  fi
  wait_for goals is_ready goals
  if must_start goals-relay; then
    RELAY_LOG_OFFSET="$(stat -c %s "$(log_file goals-relay)" 2>/dev/null || echo 0)"
    start goals-relay "$goals_settings" "$BIN/okr-goals-relay"
    wait_for goals-relay relay_started
  fi
  wait_for ledger is_ready ledger
  wait_for notifier is_ready notifier
  log "$(awk -v a="$t0" -v b="$t1" -v c="$EPOCHREALTIME" \
    'BEGIN { printf "up in %.1f s (PostgreSQL and Kafka %.1f s, services %.1f s)", c - a, b - a, c - b }')"
  cmd_status || true  # a relay still publishing a backlog is not a failed `up`
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

# stop_one NAME: SIGTERM, wait until it is gone, remove its pid file.
stop_one() {
  local p
  p="$(pid "$1")" || return 0
  log "stopping $1 (pid $p)"
  kill -TERM "$p" 2>/dev/null || true
  wait_gone "$1" "$p"
  rm -f "$(pid_file "$1")"
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

STATUS_FORMAT='%-12s %-5s %-8s %-26s %-25s %s\n'

# One line per process: state = whether its pid lives; ready = what it answers.
cmd_status() {
  local rc=0 name state ready p kafka_pid
  # shellcheck disable=SC2059
  printf "$STATUS_FORMAT" process state pid address log ready
  for name in "${NAMES[@]}"; do
    p=-
    if is_running "$name"; then state=up; p="$(pid "$name")"; else state=down; fi
    ready="$(readiness "$name")"
    [ "$ready" = ready ] || rc=1
    # shellcheck disable=SC2059
    printf "$STATUS_FORMAT" "$name" "$state" "$p" "$(address_of "$name")" "data/log/$name.log" "$ready"
  done
  state=up; ready=ready; p=-
  if "$HERE/pg.sh" status >/dev/null 2>&1; then
    p="$(head -n 1 "$ROOT/data/postgres/postmaster.pid" 2>/dev/null || echo -)"
  else
    state=down; ready=down; rc=1
  fi
  # shellcheck disable=SC2059
  printf "$STATUS_FORMAT" postgres "$state" "$p" "${PG_HOST}:${PG_PORT}" data/log/postgres.log "$ready"
  state=up; ready=ready; kafka_pid=-
  if "$HERE/kafka.sh" status >/dev/null 2>&1; then
    kafka_pid="$(cat "$ROOT/data/kafka/kafka.pid" 2>/dev/null || echo -)"
  else
    state=down; ready=down; rc=1
  fi
  # shellcheck disable=SC2059
  printf "$STATUS_FORMAT" kafka "$state" "$kafka_pid" "$KAFKA_BOOTSTRAP" data/log/kafka.log "$ready"
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
