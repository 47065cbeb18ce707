#!/usr/bin/env bash
# The project's one verify command: what CI runs, and what a person runs before pushing.
# Installs the pinned interop peers (Python SDKs in .venv, the JavaScript SDK, Azurite) and the browser of the
# dashboard's tests (Debian's chromium), checks formatting, lints, the crates' dependency trees, their docs and
# their packages, runs every test, then a one-minute soak.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-python.sh
bash scripts/setup-node.sh
bash scripts/setup-azurite.sh
bash scripts/setup-chromium.sh
export DURABLE_PYTHON="$PWD/.venv/bin/python"
export DURABLE_AZURITE="$PWD/scripts/azurite/node_modules/.bin/azurite-queue"
# Every peer above is installed, so a test that cannot find one fails instead of skipping.
export DURABLE_REQUIRE_PEERS=1

cargo fmt --all -- --check
bash scripts/check-deps.sh
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
bash scripts/check-package.sh
# Build every test first, then run them under a deadline: a test that hangs fails the run with the name libtest
# printed ("has been running for over 60 seconds") instead of holding the machine until CI gives up. A whole run
# takes a few minutes; 30 is a hang.
cargo test --workspace --locked --no-run
timeout --kill-after=60s "${DURABLE_TEST_TIMEOUT:-30m}" cargo test --workspace --locked
# The whole stack as separate processes, killed at random under a mixed workload for a minute (scripts/soak.sh).
SOAK_PROFILE=dev bash scripts/soak.sh 1
