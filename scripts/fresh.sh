#!/usr/bin/env bash
# Prove the README's two commands from scratch: clone the current commit into a temporary folder, with a new
# virtual environment and no pip cache, run `make book` and `make test` there, and print their wall times.
# Usage: bash scripts/fresh.sh            (or: make fresh)   KEEP=1 keeps the folder afterwards.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
commit="$(git -C "$here" rev-parse HEAD)"
if [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]; then
  echo "note: uncommitted changes are not tested; this checks commit ${commit:0:10}"
fi
work="$(mktemp -d /tmp/fresh-XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
git clone -q --no-hardlinks "$here" "$work/repo"
git -C "$work/repo" checkout -q "$commit"
cd "$work/repo"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
run() {
  local name="$1"; shift
  local start end
  start=$(date +%s)
  if "$@" > "$work/${name// /_}.log" 2>&1; then status=passed; else status=FAILED; fi
  end=$(date +%s)
  printf '%-10s %s in %d min %02d s  (log: %s)\n' "$name" "$status" $(((end - start) / 60)) $(((end - start) % 60)) \
    "$work/${name// /_}.log"
  [ "$status" = passed ] || { tail -n 40 "$work/${name// /_}.log"; KEEP=1; trap - EXIT; exit 1; }
}
echo "fresh clone of ${commit:0:10} in $work/repo (python: $(python3 --version 2>&1), no pip cache)"
run "make book" make book
run "make test" make test
