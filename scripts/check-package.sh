#!/usr/bin/env bash
# Packages every publishable crate of the workspace (all but `publish = false`) as `cargo publish` would, and builds
# each one from its `.crate` alone. Cargo resolves the workspace siblings that are not on crates.io from a temporary
# local registry of the `.crate` files it just made, so nothing is published and each build sees only what a user
# would download. Then checks what the archives hold: the license and readme, nothing from test fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

# The target directory on the first line, then name<TAB>version of each workspace member that may be published.
mapfile -t lines < <(cargo metadata --locked --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print(meta["target_directory"])
members = set(meta["workspace_members"])
for p in meta["packages"]:
    if p["id"] in members and p.get("publish") != []:
        print(p["name"] + "\t" + p["version"])
')
target=${lines[0]}
crates=("${lines[@]:1}")
if ((${#crates[@]} == 0)); then
  echo "check-package: no publishable crate found" >&2
  exit 1
fi

args=()
for entry in "${crates[@]}"; do
  args+=(-p "${entry%%$'\t'*}")
done
# Cargo treats a registry crate of a given name and version as unchanging: it reuses an unpacked copy in its home
# (registry/src/<hash of the temporary registry's path>/) and its earlier build in the target directory, so a second
# run on the same machine would build the siblings from the first run's sources. The packages are therefore built
# in a target directory of their own, where every build of these crates is such a registry build, and both are
# removed first (the builds of third-party crates stay). None of these crates comes from crates.io.
verify_target="$target/package-verify"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
for entry in "${crates[@]}"; do
  name=${entry%%$'\t'*}
  version=${entry##*$'\t'}
  rm -rf "$cargo_home"/registry/src/*/"$name-$version" "$cargo_home"/registry/cache/*/"$name-$version.crate" \
    "$verify_target"/debug/.fingerprint/"$name"-*
done

# The tests, benches and examples stay out of the archives on purpose; cargo says so once per target.
CARGO_TARGET_DIR="$verify_target" cargo package --locked --allow-dirty "${args[@]}" 2> >(grep -v '^warning: ignoring .* is not included in the published package$' >&2)

failed=0
for entry in "${crates[@]}"; do
  name=${entry%%$'\t'*}
  version=${entry##*$'\t'}
  archive="$verify_target/package/$name-$version.crate"
  files=$(tar -tzf "$archive" | sed "s#^$name-$version/##")
  for required in Cargo.toml Cargo.toml.orig README.md LICENSE src/lib.rs; do
    if ! grep -qx "$required" <<<"$files"; then
      echo "check-package: $archive has no $required" >&2
      failed=1
    fi
  done
  if grep -E '(^|/)(node_modules|\.venv)/|^(target|tests|benches|examples)/' <<<"$files" >&2; then
    echo "check-package: $archive holds the files above, which belong to the repository only" >&2
    failed=1
  fi
  # crates.io refuses archives over 10 MiB.
  size=$(stat -c %s "$archive")
  if ((size > 10 * 1024 * 1024)); then
    echo "check-package: $archive is $size bytes" >&2
    failed=1
  fi
  # The protocol crate generates its messages from the .proto at build time.
  if [[ $name == durable-proto ]]; then
    for required in build.rs proto/orchestrator_service.proto; do
      if ! grep -qx "$required" <<<"$files"; then
        echo "check-package: $archive has no $required" >&2
        failed=1
      fi
    done
  fi
  echo "check-package: $name $version: $(wc -l <<<"$files") files, $size bytes"
done

exit $failed
