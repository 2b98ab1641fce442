#!/usr/bin/env bash
# Makes sure the programs the test suite starts are installed; installs what is missing.
#
# The tests never use a server that is already running: each one that needs Redis starts its
# own redis-server on its own port (and a 6-node Cluster on its own ports) and stops it by pid.
# So this script only checks that the programs exist; it starts nothing.
#
#   bash scripts/test-prereqs.sh           check, and install what is missing (Debian/Ubuntu:
#                                          apt-get, as root or through sudo)
#   bash scripts/test-prereqs.sh --check   check only; exit 1 naming what is missing
#
# Both the README's instructions and `.ci/run` use this script, so the two cannot drift apart.
set -euo pipefail

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# command  Debian package  what needs it
needs=(
  "redis-server redis-server layercache-redis and layercache tests (test-owned servers and Cluster)"
  "redis-cli    redis-tools  layercache-redis tests (Cluster creation, slot migration)"
)

missing_cmds=()
missing_pkgs=()
for row in "${needs[@]}"; do
  read -r cmd pkg why <<<"$row"
  if command -v "$cmd" >/dev/null 2>&1; then
    echo "test-prereqs: found $cmd ($(command -v "$cmd"))"
  else
    echo "test-prereqs: missing $cmd (Debian package $pkg), needed by $why" >&2
    missing_cmds+=("$cmd")
    missing_pkgs+=("$pkg")
  fi
done

[ ${#missing_cmds[@]} -eq 0 ] && exit 0

if [ "$check_only" -eq 1 ]; then
  echo "test-prereqs: install ${missing_pkgs[*]} (e.g. apt-get install ${missing_pkgs[*]})" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "test-prereqs: no apt-get here; install ${missing_cmds[*]} with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "test-prereqs: not root and no sudo; install ${missing_pkgs[*]} as root" >&2
    exit 1
  fi
fi
echo "test-prereqs: installing ${missing_pkgs[*]} with apt-get"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null
for cmd in "${missing_cmds[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "test-prereqs: $cmd still missing after install" >&2; exit 1; }
done
echo "test-prereqs: installed ${missing_pkgs[*]}"
