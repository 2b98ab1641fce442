#!/usr/bin/env bash
# Builds and tests every Cargo feature of every workspace crate that has any, so code behind a
# feature that the default build leaves out (the msgpack and json codecs, the store comparison
# bench, a front crate without Redis or without the disk tier) is compiled, linted and tested.
#
# For each such crate: clippy on all targets and the unit tests with no features, with each
# feature alone, and with all features. The integration tests run once, with the default
# features, in `cargo test --workspace`; here the unit tests run per feature set. Features are
# read from `cargo metadata`, so a new feature is covered without editing this script.
#
#   bash scripts/each-feature.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# "package has-lib feature feature ..." per line, for workspace members with features.
rows=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
for p in meta["packages"]:
    feats = sorted(f for f in p["features"] if f != "default")
    if p["id"] in members and feats:
        lib = any("lib" in t["kind"] for t in p["targets"])
        print(p["name"], "lib" if lib else "nolib", *feats)
')

run() {
  echo "+ $*"
  "$@"
}

while read -r pkg lib feats; do
  [ -n "$pkg" ] || continue
  sets=("--no-default-features")
  for f in $feats; do
    sets+=("--no-default-features --features $f")
  done
  sets+=("--all-features")
  for set in "${sets[@]}"; do
    # shellcheck disable=SC2086 # $set is a list of flags
    run cargo clippy -q -p "$pkg" $set --all-targets -- -D warnings
    if [ "$lib" = lib ]; then
      # shellcheck disable=SC2086
      run cargo test -q -p "$pkg" $set --lib
    fi
  done
done <<<"$rows"
echo "each-feature: every feature set of every crate with features built, linted and unit-tested"
