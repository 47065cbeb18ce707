#!/usr/bin/env bash
# A bounded soak run (crates/durable-soak): builds the durable-backend, durable-host and soak programs and runs the
# soak for MINUTES (default 10): a mixed workload through the host and a custom handler, with the backend, the host
# and the handler SIGKILLed at random, then every result and the store checked. Further arguments go to the soak
# (--seed N to repeat a run, --keep to keep its database and logs, --help for the rest).
# SOAK_PROFILE=dev uses the debug build (what CI runs, right after the tests built it); the default is release.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
shift || true
profile=${SOAK_PROFILE:-release}
if [[ $profile == dev ]]; then
  # Every target of the workspace: the same features as `cargo test --workspace`, so after it this only links the
  # soak's own programs.
  cargo build --locked --workspace --all-targets
else
  cargo build --locked --profile "$profile" -p durable-backend -p durable-host -p durable-soak --bins
fi
target=$(cargo metadata --locked --no-deps --format-version 1 |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
dir=$profile
if [[ $profile == dev ]]; then
  dir=debug
fi
# The soak checks the store and every result after its minutes; ten more minutes than asked for is a hang, which
# then fails the run instead of holding it.
exec timeout --kill-after=60s "$((minutes * 60 + 600))s" "$target/$dir/soak" --minutes "$minutes" "$@"
