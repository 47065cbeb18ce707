#!/usr/bin/env bash
# Keeps the dependency trees as lean as the layering: the replay engine does no I/O, so it must not compile a
# runtime, a transport, a web server, a database or an HTTP client; the protocol's messages come without tonic; the
# worker, the handler, the dashboard and tracing stay free of the backend's SQLite and (for the worker and tracing)
# the web framework.
# Looks at every target platform's normal dependencies, as `cargo tree` resolves them for that crate alone.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0

# check PACKAGE FORBIDDEN...: fails when PACKAGE (default features) depends on any FORBIDDEN crate.
check() {
  local package=$1 tree
  shift
  local forbidden=("$@")
  tree=$(cargo tree --locked --target all -e normal -p "$package" --prefix none --format '{p}' |
    sed 's/ (\*)$//' | sort -u)
  # A tree without the crate itself means cargo printed something else: fail rather than pass on nothing.
  if ! grep -q "^$package v" <<<"$tree"; then
    echo "check-deps: no dependency tree for $package" >&2
    failed=1
    return
  fi
  local name found=()
  for name in "${forbidden[@]}"; do
    if grep -q "^$name v" <<<"$tree"; then
      found+=("$name")
    fi
  done
  if ((${#found[@]})); then
    echo "check-deps: $package depends on ${found[*]}; paths:" >&2
    for name in "${found[@]}"; do
      cargo tree --locked --target all -e normal -p "$package" -i "$name" >&2 || true
    done
    failed=1
  else
    echo "check-deps: $package: $(wc -l <<<"$tree") crates, none of: ${forbidden[*]}"
  fi
}

transport=(tokio tonic tonic-prost hyper h2 axum tower rusqlite reqwest mio)
check durable-proto "${transport[@]}"
check durable-core "${transport[@]}"
check durable-grpc rusqlite axum
check durable-handler rusqlite
# The dashboard is a client of any endpoint: it reaches the store through the protocol only.
check durable-dashboard rusqlite
# Tracing rides along with every door (worker, handler, host, backend), so it brings neither SQLite nor a web server.
check durable-telemetry rusqlite axum

exit $failed
