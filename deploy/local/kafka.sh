#!/usr/bin/env bash
# Local Apache Kafka 4 broker in KRaft mode for development and tests (no Docker needed).
#
# Usage: deploy/local/kafka.sh up|down|restart|status|bootstrap|logs [-f]
#   up         fetch the jars if missing (Maven Central, via deploy/local/kafka/pom.xml), write the
#              config, format the storage once, start one combined broker+controller in the
#              background, wait until it answers a metadata request, print the bootstrap address
#   down       stop it (SIGTERM, then SIGKILL after 30 s); data stays for the next `up`
#   restart    down, then up
#   status     print "up" (exit 0) or "down" (exit 1)
#   bootstrap  print the bootstrap address, e.g. 127.0.0.1:20131
#   logs       print the end of the broker log (`logs -f` follows it)
#
# The ports are this checkout's (data/ports.env, see deploy/local/ports.sh), as is the data.
# Overrides: OKR_KAFKA_PORT, OKR_KAFKA_CONTROLLER_PORT (data/ports.env), OKR_KAFKA_HOST (127.0.0.1),
#            OKR_KAFKA_DATA (data/kafka), OKR_KAFKA_LOG (data/log/kafka.log),
#            OKR_KAFKA_HEAP (512m), OKR_KAFKA_WAIT (seconds, 60), OKR_KAFKA_STOP_WAIT (seconds, 30),
#            OKR_KAFKA_JAVA_OPTS (extra JVM flags), OKR_KAFKA_CDS (1; 0 = no class-data archive).
#            Relative paths are taken from the repository root.
# Needs Java 17+ and, the first time only, Maven 3 with access to Maven Central.
# The jars land in deploy/local/cache/kafka/libs (git-ignored); delete it to fetch them again.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

# shellcheck source=deploy/local/ports.sh
. "$HERE/ports.sh"

abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }

if [ -z "${OKR_KAFKA_PORT:-}" ] || [ -z "${OKR_KAFKA_CONTROLLER_PORT:-}" ]; then
  load_ports || exit 1
fi
HOST="${OKR_KAFKA_HOST:-127.0.0.1}"
PORT="$OKR_KAFKA_PORT"
CONTROLLER_PORT="$OKR_KAFKA_CONTROLLER_PORT"
DATA="$(abs "${OKR_KAFKA_DATA:-data/kafka}")"
LOG_FILE="$(abs "${OKR_KAFKA_LOG:-data/log/kafka.log}")"
HEAP="${OKR_KAFKA_HEAP:-512m}"
HEAP_MIN=256m
case "$HEAP" in [0-9]*m) [ "${HEAP%m}" -ge 256 ] || HEAP_MIN="$HEAP" ;; esac  # -Xms <= -Xmx
WAIT="${OKR_KAFKA_WAIT:-60}"
STOP_WAIT="${OKR_KAFKA_STOP_WAIT:-30}"
JAVA_OPTS="${OKR_KAFKA_JAVA_OPTS:-}"   # extra JVM flags, word-split
CDS="${OKR_KAFKA_CDS:-1}"

POM="$HERE/kafka/pom.xml"
CACHE="$ROOT/deploy/local/cache/kafka"
LIBS="$CACHE/libs"
PID_FILE="$DATA/kafka.pid"
LOG_DIRS="$DATA/log-dirs"            # topic partitions + the __cluster_metadata log
CONFIG="$DATA/server.properties"
LOG4J="$DATA/log4j2.properties"
CLUSTER_ID_FILE="$DATA/cluster.id"
PY="$ROOT/.venv/bin/python"

die() { echo "kafka.sh: error: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

bootstrap() { echo "${HOST}:${PORT}"; }

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found; install it: apt-get install -y openjdk-17-jre-headless"
}

# The jars are complete when the marker written after a successful copy is there.
fetch_jars() {
  if [ -f "$LIBS/.complete" ] && [ "$LIBS/.complete" -nt "$POM" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "jars missing in $LIBS and mvn not found; install it: apt-get install -y maven"
  log "fetching Kafka jars from Maven Central into $LIBS (mvn dependency:copy-dependencies, $POM)"
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2 \
    || die "mvn dependency:copy-dependencies failed"
  ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "no kafka_2.13 jar in $LIBS after mvn"
  touch "$LIBS/.complete"
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars"
}

kafka_java() { java -cp "$LIBS/*" -Dlog4j2.configurationFile="$LOG4J" "$@"; }

write_config() {
  mkdir -p "$DATA" "$LOG_DIRS" "$(dirname "$LOG_FILE")"
  # Static single-voter quorum (controller.quorum.voters): the controller endpoint lives only in
  # this file, so the ports can change between runs without reformatting the storage.
  cat >"$CONFIG" <<EOF
# Written by deploy/local/kafka.sh on every \`up\`; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${HOST}:${CONTROLLER_PORT}
listeners=PLAINTEXT://${HOST}:${PORT},CONTROLLER://${HOST}:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${HOST}:${PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=${LOG_DIRS}

# One node: every replication factor and ISR minimum is 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Topics are created explicitly (AdminClient / migrations), never by a stray produce or fetch.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
# The compaction cleaner allocates this on the heap at start (default 128 MiB, which alone makes
# a 128m heap die of OutOfMemoryError); 32 MiB still dedupes ~1.3 million keys per pass.
log.cleaner.dedupe.buffer.size=33554432
EOF
  cat >"$LOG4J" <<'EOF'
# Written by deploy/local/kafka.sh: everything to stdout, which the script appends to the log file.
status = warn
name = okr-local-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
# The full config dumps (hundreds of lines per client/server start) are noise: see server.properties.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
EOF
}

format_storage() {
  if [ -f "$LOG_DIRS/meta.properties" ]; then
    return 0
  fi
  local cluster_id
  if [ -s "$CLUSTER_ID_FILE" ]; then
    cluster_id="$(cat "$CLUSTER_ID_FILE")"
  else
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
    [ -n "$cluster_id" ] || die "kafka.tools.StorageTool random-uuid printed nothing"
    echo "$cluster_id" >"$CLUSTER_ID_FILE"
  fi
  log "formatting $LOG_DIRS (cluster id $cluster_id)"
  kafka_java kafka.tools.StorageTool format --config "$CONFIG" --cluster-id "$cluster_id" \
    >>"$LOG_FILE" 2>&1 || die "kafka.tools.StorageTool format failed; see $LOG_FILE"
}

# Class-data sharing (AppCDS): the first broker run records the classes it loaded into an
# archive when it exits (`down`); later runs map it and start ~2 s faster. One archive per JVM
# build, and a new one whenever the jars are fetched again.
cds_archive() { echo "$CACHE/kafka-$(java -version 2>&1 | cksum | cut -d' ' -f1).jsa"; }

# Sets CDS_OPTS: map the archive when there is a current one, else record one at exit.
cds_opts() {
  CDS_OPTS=()
  [ "$CDS" = 1 ] || return 0
  local jsa
  jsa="$(cds_archive)"
  if [ -s "$jsa" ] && [ "$jsa" -nt "$LIBS/.complete" ]; then
    CDS_OPTS=(-XX:SharedArchiveFile="$jsa")
  else
    rm -f "$jsa" "$jsa.tmp"
    # -Xlog:cds=error: no per-class "skipping" notes in the broker log while dumping.
    CDS_OPTS=(-XX:ArchiveClassesAtExit="$jsa.tmp" -Xlog:cds=error)
  fi
}

pid() { [ -s "$PID_FILE" ] && cat "$PID_FILE"; }

# Our broker is running: the pid file names a live java process.
is_running() {
  local p
  p="$(pid)" || return 1
  kill -0 "$p" 2>/dev/null && grep -q java "/proc/$p/cmdline" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null; }

# Does the broker answer a metadata request? With the repo venv (confluent_kafka) the check is
# a real Metadata round trip; without it, an open PLAINTEXT port has to do.
# Waits up to $1 seconds; gives up early when the process given as $2 dies.
wait_ready() {
  local timeout="$1" watch_pid="${2:-}"
  if [ -x "$PY" ] && "$PY" -c 'import confluent_kafka' 2>/dev/null; then
    "$PY" - "$(bootstrap)" "$timeout" "$watch_pid" <<'PY'
import os, sys, time
from confluent_kafka.admin import AdminClient

bootstrap, timeout, watch = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + timeout
admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
while True:
    try:
        if admin.list_topics(timeout=2).brokers:
            sys.exit(0)
    except Exception:
        pass
    if watch:
        try:
            os.kill(int(watch), 0)
        except OSError:
            sys.exit(2)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.2)
PY
    return
  fi
  local end=$((SECONDS + timeout))
  until port_open "$PORT"; do
    if [ -n "$watch_pid" ] && ! kill -0 "$watch_pid" 2>/dev/null; then return 2; fi
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.5
  done
}

rotate_log() {
  # Keep the appended log bounded: one previous generation of at most ~50 MB.
  if [ -f "$LOG_FILE" ] && [ "$(stat -c %s "$LOG_FILE")" -gt 52428800 ]; then
    mv -f "$LOG_FILE" "$LOG_FILE.1"
  fi
}

cmd_up() {
  need_java
  fetch_jars
  if is_running; then
    log "broker already running (pid $(pid))"
  else
    rm -f "$PID_FILE"
    port_open "$PORT" && die "port ${HOST}:${PORT} is taken by another process (not ours: no live pid in $PID_FILE); set OKR_KAFKA_PORT or edit data/ports.env"
    port_open "$CONTROLLER_PORT" && die "controller port ${HOST}:${CONTROLLER_PORT} is taken by another process"
    write_config
    rotate_log
    format_storage
    log "starting broker on $(bootstrap) (controller ${HOST}:${CONTROLLER_PORT}, data $DATA, log $LOG_FILE)"
    echo "==== $(date -Is) kafka.sh up ====" >>"$LOG_FILE"
    cds_opts
    # setsid + nohup: the JVM outlives this script and the terminal; bash writes its own pid
    # to the pid file and then becomes java (exec), so the pid file names the JVM.
    # OKR_KAFKA_JAVA_OPTS is split into words on purpose.
    # shellcheck disable=SC2016,SC2086
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
      java -Xms"$HEAP_MIN" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J" "${CDS_OPTS[@]}" ${JAVA_OPTS} -cp "$LIBS/*" kafka.Kafka "$CONFIG" \
      </dev/null >>"$LOG_FILE" 2>&1 &
    local i=0
    until [ -s "$PID_FILE" ]; do
      i=$((i + 1))
      [ "$i" -lt 50 ] || die "broker did not write $PID_FILE"
      sleep 0.1
    done
  fi

  local rc=0
  wait_ready "$WAIT" "$(pid)" || rc=$?
  case "$rc" in
    0) ;;
    2) die "broker exited during start-up; see $LOG_FILE (tail: $0 logs)" ;;
    *) die "broker not answering on $(bootstrap) after ${WAIT}s; see $LOG_FILE" ;;
  esac
  bootstrap
}

cmd_down() {
  if ! is_running; then
    rm -f "$PID_FILE"
    log "broker not running"
    return 0
  fi
  local p i=0 killed=0
  p="$(pid)"
  log "stopping broker (pid $p)"
  kill -TERM "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -ge $((STOP_WAIT * 5)) ]; then
      log "broker still running after ${STOP_WAIT}s; sending SIGKILL"
      kill -KILL "$p" 2>/dev/null || true
      killed=1
      break
    fi
    sleep 0.2
  done
  while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  rm -f "$PID_FILE"
  if [ "$CDS" = 1 ]; then
    # A class-data archive written at exit is only trusted after a clean exit.
    local jsa
    jsa="$(cds_archive)"
    if [ -s "$jsa.tmp" ] && [ "$killed" = 0 ]; then
      mv -f "$jsa.tmp" "$jsa"
      log "saved class-data archive $jsa (faster starts from now on)"
    fi
    rm -f "$jsa.tmp"
  fi
  log "stopped broker"
}

cmd_status() {
  if is_running && port_open "$PORT"; then
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
  bootstrap) bootstrap ;;
  logs) cmd_logs "${2:-}" ;;
  *) echo "usage: $0 up|down|restart|status|bootstrap|logs [-f]" >&2; exit 2 ;;
esac
