#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, format check, clippy with
# warnings as errors, doctests, then every test under nextest (its summary
# line comes last).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

# The built-in model for the live smoke test (cached under ~/.ops by
# version and CPU; the first run builds llama-server, ~11 min on 2 cores).
echo "==> built-in model (scripts/local-model.sh)"
bash scripts/local-model.sh
echo "==> runbook embedding model (scripts/embed-model.sh)"
bash scripts/embed-model.sh
# A real nats-server (JetStream) for the event feed's tests.
echo "==> nats-server (scripts/nats-server.sh)"
OPS_NATS_SERVER=$(bash scripts/nats-server.sh)
export OPS_NATS_SERVER

# Snapshot tests must match the committed snapshots, never rewrite them.
export INSTA_UPDATE=no
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> doctests"
cargo test --workspace --doc --locked

# The eval suite (evals/cases) on the lab, after the build so the model
# has the CPU: the scripted tier on every case, the live tier (the
# built-in model) on the cases tagged for it, compared with the recorded
# baseline. Any unsafe action, any scripted failure or a live drop of more
# than 10 points fails the run (after the tests below have run too).
echo "==> evals"
cargo build --locked -p opscli
eval_home=$(mktemp -d)
mkdir -p target/evals
eval_failed=0
OPS_HOME="$eval_home" ./target/debug/opscli eval run --tier scripted \
  --out target/evals/scripted >target/evals/scripted.out 2>target/evals/scripted.log || eval_failed=1
grep -E '^eval|^\[|FAIL|UNSAFE|error' target/evals/scripted.log || true
scripted_line=$(tail -n 1 target/evals/scripted.out || true)
echo "$scripted_line"
live_line="eval live: skipped (OPS_EVAL_LIVE=0)"
if [ "${OPS_EVAL_LIVE:-1}" != "0" ]; then
  OPS_HOME="$eval_home" OPS_LOCAL_MODEL_HOME="$HOME/.ops" ./target/debug/opscli eval run --tier live \
    --baseline evals/baseline-live.json --out target/evals/live \
    >target/evals/live.out 2>target/evals/live.log || eval_failed=1
  grep -E '^eval|^\[|FAIL|UNSAFE|baseline|error' target/evals/live.log || true
  live_line=$(tail -n 1 target/evals/live.out || true)
  echo "$live_line"
fi
rm -rf "$eval_home"

echo "==> tests"
profile=default
[ "${CI:-}" = "true" ] && profile=ci
tests_rc=0
# No backtraces: a failing test's own message is what its output ends with.
RUST_BACKTRACE=0 cargo nextest run --workspace --locked --profile "$profile" --no-fail-fast || tests_rc=$?

if [ "$eval_failed" != 0 ]; then
  echo "evals FAILED: $scripted_line / $live_line (reports: target/evals/*/report.md)" >&2
  exit 1
fi
exit "$tests_rc"
