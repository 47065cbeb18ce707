#!/usr/bin/env bash
# The project's one verify command: what CI runs, and what a person runs before pushing.
# Installs the pinned Python and JavaScript interop SDKs (.venv, crates/durable-backend/tests/js), checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-python.sh
bash scripts/setup-node.sh
export DURABLE_PYTHON="$PWD/.venv/bin/python"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
