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

echo "==> tests"
profile=default
[ "${CI:-}" = "true" ] && profile=ci
cargo nextest run --workspace --locked --profile "$profile" --no-fail-fast
