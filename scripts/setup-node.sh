#!/usr/bin/env bash
# Installs the pinned Microsoft JavaScript Durable Task SDK (@microsoft/durabletask-js, exact versions from the
# committed package-lock.json) into crates/durable-backend/tests/js/node_modules for tests/js_interop.rs.
# Install scripts are skipped: the SDK and its gRPC stack are plain JavaScript and need none.
set -euo pipefail
cd "$(dirname "$0")/../crates/durable-backend/tests/js"
NODE=${DURABLE_NODE:-node}
if ! command -v "$NODE" >/dev/null 2>&1; then
  echo "setup-node: no '$NODE' on PATH (install Node.js 20 or newer, or set DURABLE_NODE)" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "setup-node: npm is missing (it ships with Node.js)" >&2
  exit 1
fi
# The SDK declares engines node>=22 but runs on Node 20; npm only warns about that, so the warning is silenced
# rather than forcing a newer Node on every machine.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
"$NODE" -e "const sdk = require('@microsoft/durabletask-js'); \
if (typeof sdk.TaskHubGrpcClient !== 'function' || typeof sdk.TaskHubGrpcWorker !== 'function') process.exit(1); \
console.log('javascript interop SDK ready: @microsoft/durabletask-js ' + require('@microsoft/durabletask-js/package.json').version)"
