#!/usr/bin/env bash
# Sets up, builds opscli, and runs it on its embedded defaults (SQLite store
# in $OPS_HOME, default ~/.ops): loads the example inventory and task
# library, then lists and describes what was loaded.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "==> the copilot's built-in offline model (first run: ~11 min build + ~1.1 GB download)"
bash scripts/local-model.sh
echo "==> the runbook search's embedding model (~90 MB)"
bash scripts/embed-model.sh
echo "==> building opscli (release)"
cargo build --release --locked -p opscli
OPS=target/release/opscli

echo "==> opscli apply -f examples/"
"$OPS" apply -f examples/
echo
echo "==> opscli get hosts"
"$OPS" get hosts
echo
echo "==> opscli get tasks"
"$OPS" get tasks
echo
echo "==> opscli describe pipeline web-health"
"$OPS" describe pipeline web-health
echo
echo "opscli is at $OPS; the store is $("$OPS" config get store)."
echo "Try: $OPS get hosts -l role=web -o yaml"
echo "     $OPS copilot        (the built-in model starts by itself; or set OPENAI_BASE_URL / OPENAI_API_KEY)"
