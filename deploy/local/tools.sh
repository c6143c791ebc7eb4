#!/usr/bin/env bash
# Command-line tools for working with the local infrastructure, installed from Debian's packages.
#
# Usage: deploy/local/tools.sh kcat
#   kcat    install kcat (Kafka CLI: `kcat -b "$(deploy/local/kafka.sh bootstrap)" -L` lists this
#           checkout's brokers and topics)
#           unless it is already on PATH; print its path
# Installing needs root or password-less sudo (apt-get).
set -euo pipefail

die() { echo "tools.sh: error: $*" >&2; exit 1; }
log() { echo "tools.sh: $*" >&2; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# apt_install PACKAGE: install one Debian package, refreshing the package lists only if needed.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $1 with your package manager"
  log "installing Debian package $1"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >&2; then
    log "retrying after apt-get update"
    as_root apt-get update -q >&2 || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >&2 \
      || die "apt-get install $1 failed"
  fi
}

cmd_kcat() {
  if ! command -v kcat >/dev/null 2>&1; then
    apt_install kcat
  fi
  command -v kcat >/dev/null 2>&1 || die "kcat still not on PATH after installing"
  command -v kcat
}

case "${1:-}" in
  kcat) cmd_kcat ;;
  *) echo "usage: $0 kcat" >&2; exit 2 ;;
esac
