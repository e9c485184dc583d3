#!/usr/bin/env bash
# What a user of companion gets, in one clean virtual environment (no system site packages, nothing from
# requirements.txt), run from a directory outside the repository so that nothing is imported from the working tree:
#   1. the core alone, `pip install torch==2.13.0 .` (torch and numpy): matplotlib, scikit-learn, scipy and tqdm are
#      absent, every recipe of book/recipes/ that needs only the core runs, and each feature that needs an extra
#      says which one (companion.digits, the three figure modules, fit(progress=True), a recipe that needs one);
#   2. then the extras, `pip install torch==2.13.0 ".[plots,data,progress]"` into the same venv: the remaining recipes
#      and the user-facing API tests (tests/test_user_api.py, run as a plain script: pytest is not a dependency).
# Usage: bash scripts/user_check.sh          KEEP=1 keeps the temporary folder; PYTHON=python3.11 picks the Python;
#        LOWEST=1 installs the lowest versions that pyproject.toml allows, for the core and those extras
#        (name>=X.Y becomes name==X.Y.*); TORCH=torch==X.Y.Z tests another torch (a CUDA build of several GB unless
#        it is on local disk).
# torch is pinned to the version of requirements.txt: on this project's machines pip takes that CPU build from local
# disk, where an unpinned torch would download a CUDA build of several GB.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
torch_pin="${TORCH:-$(grep -E "^torch==" "$here/requirements.txt")}"
extras="plots,data,progress"
# Recipes that need an extra (companion.digits: data); every other recipe must run on the core alone.
extra_recipes=" 06_certified_nonexpansive_classifier.py "
work="$(mktemp -d /tmp/user-check-XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 MPLBACKEND=Agg

start=$(date +%s)
"$python" -m venv "$work/venv"
py="$work/venv/bin/python"
constraints=()
if [ "${LOWEST:-0}" = 1 ]; then
  "$python" - "$here/pyproject.toml" "$extras" > "$work/lowest.txt" <<'PY'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[2].split(","):
    requirements += project["optional-dependencies"][extra]
for requirement in requirements:
    if requirement.startswith(project["name"] + "["):  # an extra that names other extras: listed above
        continue
    name, bound = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9.]+)", requirement).groups()
    print(f"{name}=={bound}" if name == "torch" else f"{name}=={bound}.*")
PY
  echo "lowest allowed versions: $(tr '\n' ' ' < "$work/lowest.txt")"
  constraints=(-c "$work/lowest.txt")
fi

failed=0
pass() { echo "PASSED $1"; }
fail() { echo "FAILED $1"; failed=$((failed + 1)); }
run_recipe() {  # run_recipe NAME STEP: run one recipe in the project folder, log in $work
  local t0=$SECONDS
  if "$py" "$1" > "$work/$1.$2.log" 2>&1; then pass "recipe $1 ($(( SECONDS - t0 )) s)"; else
    fail "recipe $1"; tail -n 20 "$work/$1.$2.log"; fi
}
install() {  # install WHAT...: pip install into the venv, with the LOWEST constraints if any
  "$py" -m pip install -q "${constraints[@]}" "$torch_pin" "$@" >> "$work/install.log" 2>&1 || {
    tail -n 40 "$work/install.log"; echo "user check: pip install $* FAILED"; exit 1; }
}

# -- 1. the core alone --
install "$here"
echo "installed $torch_pin and the companion core into a clean venv in $(( $(date +%s) - start )) s"
mkdir "$work/project"
cp "$here"/book/recipes/*.py "$here/tests/test_user_api.py" "$work/project/"
cd "$work/project"
"$py" -c "import companion, sys; assert '$here' not in companion.__file__, companion.__file__; \
print('companion imported from', companion.__file__)"
if "$py" - > "$work/core.log" 2>&1 <<'PY'
import importlib, importlib.util, sys

import torch

import companion

present = [name for name in ("matplotlib", "sklearn", "scipy", "tqdm") if importlib.util.find_spec(name)]
assert not present, f"the core install brought {present}"
x = torch.linspace(-1, 1, 8).reshape(8, 1)
companion.fit(torch.nn.Linear(1, 1), (x, 2 * x), epochs=1)  # the default progress=None: no bar without tqdm


def names_the_extra(call, extra):
    try:
        call()
    except ModuleNotFoundError as error:
        assert f"pip install 'companion[{extra}]'" in str(error), str(error)
        print(f"  {error}")
    else:
        raise AssertionError(f"{call} ran without its extra {extra}")


names_the_extra(companion.digits, "data")
for module in ("companion.plotting", "companion.pde.plots", "companion.structured.figures"):
    names_the_extra(lambda: importlib.import_module(module), "plots")
names_the_extra(lambda: companion.fit(torch.nn.Linear(1, 1), (x, 2 * x), epochs=1, progress=True), "progress")
PY
then
  pass "core alone: no matplotlib, scikit-learn, scipy or tqdm; fit runs without tqdm; each extra is named:"
  cat "$work/core.log"
else
  fail "core alone"; tail -n 30 "$work/core.log"
fi
for name in *.py; do
  [ "$name" = test_user_api.py ] && continue
  if [[ "$extra_recipes" == *" $name "* ]]; then  # without its extra it must stop with the message naming it
    if ! "$py" "$name" > "$work/$name.core.log" 2>&1 && grep -q "pip install 'companion\[" "$work/$name.core.log"; then
      pass "recipe $name stops without its extra: $(grep -o "pip install 'companion\[[a-z,]*\]'" "$work/$name.core.log")"
    else
      fail "recipe $name without its extra (expected an error naming it)"; tail -n 20 "$work/$name.core.log"
    fi
  else
    run_recipe "$name" core
  fi
done
echo "core alone: $failed failure(s) at $(( $(date +%s) - start )) s"

# -- 2. the extras, in the same venv --
t0=$SECONDS
install "$here[$extras]"
echo "installed companion[$extras] in $(( SECONDS - t0 )) s ($("$py" -c "import importlib.metadata as m; \
print(', '.join(f'{n} {m.version(n)}' for n in ('matplotlib', 'scikit-learn', 'scipy', 'tqdm')))"))"
for name in $extra_recipes; do
  run_recipe "$name" extras
done
t0=$SECONDS
if "$py" test_user_api.py > "$work/test_user_api.log" 2>&1; then
  pass "tests/test_user_api.py ($(tail -n 1 "$work/test_user_api.log"), $(( SECONDS - t0 )) s)"
else
  fail "tests/test_user_api.py"; grep -v '^PASSED' "$work/test_user_api.log" | tail -n 40
fi
echo "user check: $failed failure(s) in $(( $(date +%s) - start )) s"
[ "$failed" = 0 ]
