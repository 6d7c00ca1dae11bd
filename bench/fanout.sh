#!/usr/bin/env bash
# Fan-out benchmark (not a test): `uname -a` on N sshd hosts with
#   opscli shell, parallel-ssh (Debian pssh) and Ansible ad-hoc (ansible-core
#   from PyPI, -f N), all in the same run, all verifying host keys against
#   the same known_hosts file. opscli and pssh run twice per repetition:
#   with concurrency N (as Ansible) and at their own defaults (opscli 50,
#   pssh 32). Prints wall times (median of RUNS), the ratios, and opscli's
#   peak memory.
#
#   bash bench/fanout.sh [HOSTS...]      default: 50 200
#   RUNS=3 (env)                          repetitions per tool and size
#
# Hosts are 127.0.1.1..N:2222 on loopback, served by one sshd per 16
# addresses (sshd's listen-socket limit), all with one host key.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("${@:-50}")
[ $# -eq 0 ] && SIZES=(50 200)
RUNS=${RUNS:-3}
WORK=$(mktemp -d /var/tmp/ops-bench-XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

bash scripts/setup.sh >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
if [ ! -x "$HOME/.cache/ops-bench/venv/bin/ansible" ]; then
  echo "==> installing ansible-core into ~/.cache/ops-bench/venv"
  python3 -m venv "$HOME/.cache/ops-bench/venv"
  "$HOME/.cache/ops-bench/venv/bin/pip" install -q ansible-core
fi
ANSIBLE="$HOME/.cache/ops-bench/venv/bin/ansible"
echo "==> building opscli (release)"
cargo build -q --release --locked -p opscli
OPS=$PWD/target/release/opscli

MAX=$(printf '%s\n' "${SIZES[@]}" | sort -n | tail -1)
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id"
cp "$WORK/id.pub" "$WORK/authorized_keys"
mkdir -p /run/sshd
HOSTKEY=$(cut -d' ' -f1,2 "$WORK/host_key.pub")
: > "$WORK/known_hosts"
addr() { echo "127.0.1.$1"; }
group=0
for ((i = 1; i <= MAX; i += 16)); do
  cfg="$WORK/sshd_$group.conf"
  {
    for ((j = i; j < i + 16 && j <= MAX; j++)); do echo "ListenAddress $(addr $j):2222"; done
    echo "HostKey $WORK/host_key"; echo "PidFile $WORK/sshd_$group.pid"
    echo "AuthorizedKeysFile $WORK/authorized_keys"; echo "StrictModes no"; echo "PermitRootLogin yes"
    echo "UsePAM no"; echo "LogLevel QUIET"; echo "MaxStartups 2000"; echo "MaxSessions 100"
    echo "UseDNS no"
  } > "$cfg"
  /usr/sbin/sshd -D -f "$cfg" & PIDS+=($!)
  group=$((group + 1))
done
for ((j = 1; j <= MAX; j++)); do echo "[$(addr $j)]:2222 $HOSTKEY" >> "$WORK/known_hosts"; done
sleep 1

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wall() { local s e; s=$(date +%s.%N); "$@" > "$WORK/out" 2>&1 || { echo "FAILED: $*" >&2; tail -5 "$WORK/out" >&2; }; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

printf '\n%-6s %10s %10s %10s %10s %10s %12s %12s %12s %9s\n' HOSTS "ops -f N" "ops dflt" "pssh -p N" "pssh dflt" "ans -f N" "pssh/ops(N)" "pssh/ops(d)" "ans/ops(d)" "ops RSS"
for n in "${SIZES[@]}"; do
  seq 1 "$n" | while read -r j; do addr "$j"; done > "$WORK/hosts.txt"
  sed 's/$/:2222/' "$WORK/hosts.txt" > "$WORK/pssh_hosts.txt"
  { echo "[all]"; while read -r h; do echo "$h ansible_port=2222 ansible_python_interpreter=/usr/bin/python3"; done < "$WORK/hosts.txt"; } > "$WORK/inventory.ini"
  export OPS_HOME="$WORK/ops-home"
  unset OPS_FORKS
  mkdir -p "$OPS_HOME"; cp "$WORK/known_hosts" "$OPS_HOME/known_hosts"
  opsn=(); opsd=(); psshn=(); psshd=(); ans=()
  PSSH_ARGS=(-h "$WORK/pssh_hosts.txt" -l root -t 120 -x "-i $WORK/id -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$WORK/known_hosts -o BatchMode=yes")
  OPS_ARGS=(shell -i "$WORK/hosts.txt" --port 2222 --username root --privatekeypath "$WORK/id" --content 'uname -a')
  for ((r = 0; r < RUNS; r++)); do
    opsn+=("$(wall "$OPS" "${OPS_ARGS[@]}" --forks "$n")")
    grep -q "run shell-.*: Succeeded" "$WORK/out" || { echo "opscli did not succeed:"; tail -5 "$WORK/out"; }
    opsd+=("$(wall "$OPS" "${OPS_ARGS[@]}")")
    grep -q "run shell-.*: Succeeded" "$WORK/out" || { echo "opscli did not succeed:"; tail -5 "$WORK/out"; }
    psshn+=("$(wall parallel-ssh "${PSSH_ARGS[@]}" -p "$n" 'uname -a')")
    psshd+=("$(wall parallel-ssh "${PSSH_ARGS[@]}" 'uname -a')")
    ans+=("$(wall env ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="-o UserKnownHostsFile=$WORK/known_hosts -o ControlMaster=no" "$ANSIBLE" all -i "$WORK/inventory.ini" -u root --private-key "$WORK/id" -f "$n" -m command -a 'uname -a')")
  done
  on=$(printf '%s\n' "${opsn[@]}" | median); od=$(printf '%s\n' "${opsd[@]}" | median)
  pn=$(printf '%s\n' "${psshn[@]}" | median); pd=$(printf '%s\n' "${psshd[@]}" | median)
  a=$(printf '%s\n' "${ans[@]}" | median)
  rss=$(/usr/bin/time -f '%M' "$OPS" "${OPS_ARGS[@]}" --forks "$n" 2>&1 >/dev/null | tail -1)
  printf '%-6s %10.2f %10.2f %10.2f %10.2f %10.2f %11.1fx %11.1fx %11.1fx %6.1f MB\n' "$n" "$on" "$od" "$pn" "$pd" "$a" \
    "$(echo "$pn / $on" | bc -l)" "$(echo "$pd / $od" | bc -l)" "$(echo "$a / $od" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
done
