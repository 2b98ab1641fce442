#!/usr/bin/env bash
# Fetches the real cache traces that the trace tests, `layercache sim` examples and
# BENCHMARKS.md use, into the layout the tests expect:
#
#     scripts/fetch_traces.sh [DIR]      # default: ../shared/traces from the repository root
#
# then run the tests with `LAYERCACHE_TRACES=DIR cargo test --workspace` (not needed for the
# default DIR). Without the traces the trace tests are skipped, each with one line
# "skipped: traces not found at ..."; CI sets LAYERCACHE_REQUIRE_TRACES=1 so that they fail
# instead. See `layercache_trace::shared_traces` for the sources and their licences.
#
# Every file is checked against the SHA-256 of the copy the repository's figures were taken
# from. A download with another checksum is kept beside as FILE.mismatch and reported (the
# tests check request and key counts, so such a file may still be fine); the script then
# exits with status 1. Files already present with the right checksum are not downloaded again.
#
# Needs curl (or wget) and sha256sum (or shasum).
#
# The addresses were taken from the public repositories that hold these files
# (moka-rs/cache-trace, ben-manes/caffeine, 1a1a11a/libCacheSim), by path and by a commit at
# which each file was present. NONE OF THEM COULD BE TRIED from the machine this script was
# written on (it had no general network access): they are unverified. Each file lists
# several addresses, tried in order: a commit-pinned raw URL first, then the default
# branch. A raw URL that returns a Git LFS pointer instead of the data is retried through
# GitHub's LFS media host.

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
dest=${1:-$(dirname "$root")/shared/traces}

raw=https://raw.githubusercontent.com
caffeine_parser=simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser

# file | sha256 | URLs (space-separated, tried in order)
files=(
  "arc/OLTP.lis.zst|2a81096104b6de28aae54558b764bb32fe2ac3beb8a7dcdee1259af8798d3531|\
$raw/moka-rs/cache-trace/2ec2b62e27cdc26af32fd63b925857edeb784879/arc/OLTP.lis.zst \
$raw/moka-rs/cache-trace/main/arc/OLTP.lis.zst"
  "arc/P3.lis.zst|4110048c690756400675b14f200989fae351b62147705dac9637bbcff6d29751|\
$raw/moka-rs/cache-trace/35484959668e240d0c39ceb5da7c16d1550ad711/arc/P3.lis.zst \
$raw/moka-rs/cache-trace/main/arc/P3.lis.zst"
  "lirs/loop.trace.gz|465c1cc6bb08993034fd3597106cb0edc55b25a5984a17a12018f30a06ba60e9|\
$raw/ben-manes/caffeine/9303c98de19d762cfafbbe8bf5b0279cc10330b7/$caffeine_parser/lirs/loop.trace.gz \
$raw/ben-manes/caffeine/master/$caffeine_parser/lirs/loop.trace.gz"
  "lirs/sprite.trace.gz|e2613162ee4d5134cf155ae090ccd1613a0a91f45e3a0bd636233b5bb42fc28d|\
$raw/ben-manes/caffeine/2e1db0c1e7759b50b8be94f70ab24bbc2c534d54/$caffeine_parser/lirs/sprite.trace.gz \
$raw/ben-manes/caffeine/master/$caffeine_parser/lirs/sprite.trace.gz"
  "lirs/multi2.trace.gz|3576bc20286f4d204a3c2b6647bb691ed9dde9a923a32624e145873ed830dad5|\
$raw/ben-manes/caffeine/2e1db0c1e7759b50b8be94f70ab24bbc2c534d54/$caffeine_parser/lirs/multi2.trace.gz \
$raw/ben-manes/caffeine/master/$caffeine_parser/lirs/multi2.trace.gz"
  "lirs/gli.trace.gz|c300a0bff8149373bdbb7df3fa440e621aba920b0ec6bcc7a936f360f782511c|\
$raw/ben-manes/caffeine/6dfaa6580de22e9816ec90d622c640543d4461d2/$caffeine_parser/lirs/gli.trace.gz \
$raw/ben-manes/caffeine/master/$caffeine_parser/lirs/gli.trace.gz"
  "cache2k/web07.trace.xz|e50bb13aa66d1cc71877c8ea92c577be0d0ab5b2b4f7a16c87046af1097bd46a|\
$raw/ben-manes/caffeine/9303c98de19d762cfafbbe8bf5b0279cc10330b7/$caffeine_parser/cache2k/web07.trace.xz \
$raw/ben-manes/caffeine/master/$caffeine_parser/cache2k/web07.trace.xz"
  "libcachesim/cloudPhysicsIO.oracleGeneral.bin|65438dd7b2d3dec7ffe8a5c9348045da92de3311f339b7b59c9a0a44e6050dea|\
$raw/1a1a11a/libCacheSim/develop/data/cloudPhysicsIO.oracleGeneral.bin \
$raw/1a1a11a/libCacheSim/master/data/cloudPhysicsIO.oracleGeneral.bin \
$raw/1a1a11a/libCacheSim/c866b9be4b70d1fecd7854fee4107350d2b0af09/data/cloudphyicsIO.oracleGeneral.bin"
)
# The cache2k licence (CC BY 4.0) travels with its trace; its text, not its bytes, matters,
# so any copy is accepted.
license_urls="$raw/ben-manes/caffeine/700ca90d1307980fc32945bb73a475f2763c9c23/$caffeine_parser/cache2k/LICENSE.txt \
$raw/ben-manes/caffeine/master/$caffeine_parser/cache2k/LICENSE.txt"

if command -v curl >/dev/null; then
  get() { curl --fail --location --silent --show-error --retry 2 --max-time 300 -o "$2" "$1"; }
elif command -v wget >/dev/null; then
  get() { wget --quiet --tries=3 --timeout=300 -O "$2" "$1"; }
else
  echo "fetch_traces: needs curl or wget" >&2
  exit 2
fi
if command -v sha256sum >/dev/null; then
  sha() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null; then
  sha() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  echo "fetch_traces: needs sha256sum or shasum" >&2
  exit 2
fi

# Downloads $1 to $2; a Git LFS pointer from raw.githubusercontent.com is retried through
# media.githubusercontent.com (the same owner/repo/ref/path).
fetch() {
  local url=$1 out=$2
  get "$url" "$out" || return 1
  if head -c 40 "$out" | grep -q '^version https://git-lfs'; then
    local media=${url/raw.githubusercontent.com/media.githubusercontent.com\/media}
    echo "  $url is a Git LFS pointer; trying $media"
    get "$media" "$out" || return 1
  fi
}

mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()

for entry in "${files[@]}"; do
  IFS='|' read -r name want urls <<<"$entry"
  target=$dest/$name
  mkdir -p "$(dirname "$target")"
  if [[ -f $target && $(sha "$target") == "$want" ]]; then
    echo "ok       $name (already there)"
    continue
  fi
  got=""
  for url in $urls; do
    echo "fetching $name from $url"
    if fetch "$url" "$tmp/file"; then
      got=$(sha "$tmp/file")
      if [[ $got == "$want" ]]; then
        mv "$tmp/file" "$target"
        echo "ok       $name"
        break
      fi
      echo "  SHA-256 $got, expected $want"
      mv "$tmp/file" "$target.mismatch"
    else
      echo "  failed"
    fi
  done
  if [[ ! -f $target || $(sha "$target") != "$want" ]]; then
    failed+=("$name")
  fi
done

if [[ ! -f $dest/cache2k/LICENSE.txt ]]; then
  for url in $license_urls; do
    echo "fetching cache2k/LICENSE.txt from $url"
    if fetch "$url" "$tmp/license"; then
      mv "$tmp/license" "$dest/cache2k/LICENSE.txt"
      break
    fi
  done
  [[ -f $dest/cache2k/LICENSE.txt ]] || failed+=("cache2k/LICENSE.txt")
fi

echo
if ((${#failed[@]})); then
  echo "not fetched with the expected checksum: ${failed[*]}"
  echo "(a download with another checksum is kept as FILE.mismatch in $dest)"
  exit 1
fi
echo "all traces are in $dest"
if [[ $dest != "$(dirname "$root")/shared/traces" ]]; then
  echo "run the tests with: LAYERCACHE_TRACES=$dest cargo test --workspace"
fi
