#!/usr/bin/env bash
# Prints the path of a redis-server binary, installing Debian's redis-server package when none is found and this
# user may install (root, or passwordless sudo). Otherwise says so in one line on stderr and exits 1.
# CSMS_REDIS_SERVER names the binary to look for (default: redis-server on PATH). Used by `make run` (the embedded
# default's private Redis, scripts/run_embedded.py) and scripts/test-services.sh.
set -euo pipefail

BIN=${CSMS_REDIS_SERVER:-redis-server}
found() { command -v "$BIN" 2>/dev/null; }

if found; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
  echo "make run needs redis-server for its worker and beat: not found ($BIN), and installing it needs root (as root: apt-get install redis-server; or set REDIS_URL to a Redis of yours)" >&2
  exit 1
fi
echo "installing Debian package redis-server" >&2
"${SUDO[@]}" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >&2
found || { echo "redis-server was installed but $BIN is still not found" >&2; exit 1; }
