#!/usr/bin/env bash
# Installs the pinned Azure Storage emulator (Azurite) that the local host's queue-trigger tests run against.
set -euo pipefail
cd "$(dirname "$0")/azurite"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
test -x node_modules/.bin/azurite-queue
echo "azurite $(node -p "require('azurite/package.json').version") ready"
