#!/usr/bin/env bash
# What a user of companion gets: a clean virtual environment (no system site packages) with only
# `pip install torch==2.13.0 .` (the project's pyproject dependencies, nothing from requirements.txt), then every
# recipe of book/recipes/ and the user-facing API tests (tests/test_user_api.py, run as a plain script: pytest is not
# a dependency) from a directory outside the repository, so that nothing is imported from the working tree.
# Usage: bash scripts/user_check.sh          KEEP=1 keeps the temporary folder; PYTHON=python3.11 picks the Python;
#        LOWEST=1 installs the lowest versions that pyproject.toml allows (name>=X.Y becomes name==X.Y.*);
#        TORCH=torch==X.Y.Z tests another torch (a CUDA build of several GB unless it is on local disk).
# torch is pinned to the version of requirements.txt: on this project's machines pip takes that CPU build from local
# disk, where an unpinned torch would download a CUDA build of several GB.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
torch_pin="${TORCH:-$(grep -E "^torch==" "$here/requirements.txt")}"
work="$(mktemp -d /tmp/user-check-XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 MPLBACKEND=Agg

start=$(date +%s)
"$python" -m venv "$work/venv"
constraints=()
if [ "${LOWEST:-0}" = 1 ]; then
  "$python" - "$here/pyproject.toml" > "$work/lowest.txt" <<'PY'
import re, sys, tomllib
for requirement in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    name, bound = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9.]+)", requirement).groups()
    print(f"{name}=={bound}" if name == "torch" else f"{name}=={bound}.*")
PY
  echo "lowest allowed versions: $(tr '\n' ' ' < "$work/lowest.txt")"
  constraints=(-c "$work/lowest.txt")
fi
"$work/venv/bin/python" -m pip install -q "${constraints[@]}" "$torch_pin" "$here" > "$work/install.log" 2>&1 || {
  tail -n 40 "$work/install.log"; echo "user check: pip install of companion FAILED"; exit 1; }
echo "installed $torch_pin and companion into a clean venv in $(( $(date +%s) - start )) s"

mkdir "$work/project"
cp "$here"/book/recipes/*.py "$here/tests/test_user_api.py" "$work/project/"
cd "$work/project"
"$work/venv/bin/python" -c "import companion, sys; assert '$here' not in companion.__file__, companion.__file__; \
print('companion imported from', companion.__file__)"
failed=0
for recipe in "$here"/book/recipes/*.py; do
  name="$(basename "$recipe")"
  if "$work/venv/bin/python" "$name" > "$work/$name.log" 2>&1; then
    echo "PASSED recipe $name"
  else
    echo "FAILED recipe $name"; tail -n 20 "$work/$name.log"; failed=$((failed + 1))
  fi
done
if "$work/venv/bin/python" test_user_api.py > "$work/test_user_api.log" 2>&1; then
  echo "PASSED tests/test_user_api.py ($(tail -n 1 "$work/test_user_api.log"))"
else
  echo "FAILED tests/test_user_api.py"; grep -v '^PASSED' "$work/test_user_api.log" | tail -n 40; failed=$((failed + 1))
fi
echo "user check: $failed failure(s) in $(( $(date +%s) - start )) s"
[ "$failed" = 0 ]
