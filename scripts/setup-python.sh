#!/usr/bin/env bash
# Creates .venv with the pinned official Durable Task Python SDKs that the interop tests and benchmarks drive.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/python-requirements.txt -c scripts/python-constraints.txt
.venv/bin/python -c "import durabletask, durabletask.azuremanaged, opentelemetry.sdk.trace; print('python interop SDKs ready')"
