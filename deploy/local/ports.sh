# This checkout's ports, sourced by pg.sh, kafka.sh and stack.sh (not run on its own).
#
# Each checkout runs its own PostgreSQL and Kafka, so two checkouts on one machine never share
# data. Their ports are chosen once per checkout and recorded in data/ports.env:
#   OKR_PG_PORT, OKR_KAFKA_PORT, OKR_KAFKA_CONTROLLER_PORT: a block of three ports derived from
#     the checkout's absolute path (20000 + 10 x (cksum % 1000)), the next block when one of
#     them already answers;
#   OKR_STACK_GOALS_PORT (8001), OKR_STACK_NOTIFIER_PORT (8002), OKR_LEDGER_HTTP_PORT (8090):
#     the stack's HTTP ports, the well-known ones (edit the file to run a second checkout's
#     stack beside the first).
# A variable set in the environment wins over the file; the file wins over the defaults.
# Needs ROOT (the repository root) to be set by the sourcing script.

PORTS_FILE="$ROOT/data/ports.env"

_port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A block base whose three ports nobody answers on, starting from the checkout's own.
_ports_block() {
  local hash slot base i
  hash="$(printf %s "$ROOT" | cksum | cut -d' ' -f1)"
  slot=$((hash % 1000))
  for i in $(seq 0 49); do
    base=$((20000 + 10 * ((slot + i) % 1000)))
    if ! _port_answers "$base" && ! _port_answers $((base + 1)) && ! _port_answers $((base + 2)); then
      echo "$base"
      return 0
    fi
  done
  echo "ports.sh: error: no free port block found near $((20000 + 10 * slot)); set OKR_PG_PORT, OKR_KAFKA_PORT and OKR_KAFKA_CONTROLLER_PORT" >&2
  return 1
}

_ports_write() {
  local base
  base="$(_ports_block)" || return 1
  mkdir -p "$(dirname "$PORTS_FILE")"
  cat >"$PORTS_FILE.tmp.$$" <<EOF
# This checkout's ports, chosen once by deploy/local/ports.sh (edit them here; an exported
# variable of the same name wins). PostgreSQL and Kafka are this checkout's own.
OKR_PG_PORT=$base
OKR_KAFKA_PORT=$((base + 1))
OKR_KAFKA_CONTROLLER_PORT=$((base + 2))
OKR_STACK_GOALS_PORT=8001
OKR_STACK_NOTIFIER_PORT=8002
OKR_LEDGER_HTTP_PORT=8090
EOF
  mv -f "$PORTS_FILE.tmp.$$" "$PORTS_FILE"
}

# Load the file (writing it first if missing, under a lock so that parallel scripts agree),
# then set every variable the environment does not already set.
load_ports() {
  if [ ! -s "$PORTS_FILE" ]; then
    mkdir -p "$(dirname "$PORTS_FILE")"
    (
      flock 9
      [ -s "$PORTS_FILE" ] || _ports_write
    ) 9>"$PORTS_FILE.lock" || return 1
  fi
  local name value
  while IFS='=' read -r name value; do
    case "$name" in
      OKR_PG_PORT | OKR_KAFKA_PORT | OKR_KAFKA_CONTROLLER_PORT | OKR_STACK_GOALS_PORT | \
        OKR_STACK_NOTIFIER_PORT | OKR_LEDGER_HTTP_PORT)
        [ -n "${!name:-}" ] || printf -v "$name" '%s' "$value"
        ;;
    esac
  done <"$PORTS_FILE"
}
