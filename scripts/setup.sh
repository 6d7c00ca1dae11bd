#!/usr/bin/env bash
# Installs what building and testing ops needs on Debian 12 (run as root,
# or with sudo available). Idempotent: safe to run again. Later features
# add their system packages here.
set -euo pipefail

say() { printf '==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: need root (or sudo) to run: $*" >&2; exit 1; fi
}

# System packages: a C toolchain for the bundled SQLite; OpenSSH server and
# client, sudo, python3, iproute2/util-linux (network and mount namespaces)
# and the tools the anchor's host tasks use, for the real-host tests; pssh
# for the fan-out benchmark; openssl for the eval lab's certificates.
PKGS=(gcc libc6-dev pkg-config ca-certificates openssh-server openssh-client sudo python3 iproute2 util-linux procps coreutils net-tools iputils-ping strace pssh openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    say "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: not Debian; make sure these are installed: ${missing[*]}" >&2
  fi
fi

# sshd started by hand needs its privilege-separation directory.
as_root mkdir -p /run/sshd && as_root chmod 0755 /run/sshd

# The unprivileged account the SSH tests log in as with a password and use
# sudo from (sudo asks for the password). Test-only: the password is public.
if [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null; then
  if ! id opstest >/dev/null 2>&1; then
    say "creating test user opstest"
    as_root useradd -m -s /bin/bash opstest
  fi
  echo 'opstest:ops-test-password' | as_root chpasswd
  echo 'opstest ALL=(ALL:ALL) ALL' | as_root tee /etc/sudoers.d/opstest >/dev/null
  as_root chmod 0440 /etc/sudoers.d/opstest
fi

# Rust toolchain pieces.
if ! command -v cargo >/dev/null; then
  echo "error: cargo not found; install Rust stable (https://rustup.rs) first" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || { say "adding rustup component $c"; rustup component add "$c"; }
  done
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
say "setup done"
