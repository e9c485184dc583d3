"""A light core: ``pip install companion`` brings torch and numpy only; matplotlib, scikit-learn and tqdm are extras.

``import companion`` must not import an extra, and each place that needs one, imported without it, says which extra
installs it (``companion._checks.import_optional``). A missing module is simulated by ``sys.modules[name] = None``,
which makes ``import name`` raise ``ModuleNotFoundError`` as if it were not installed.
scripts/user_check.sh checks the same from a real core-only install.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch
from torch import nn

import companion as C
from companion._checks import import_optional

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("matplotlib", "sklearn", "scipy", "tqdm")


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``import module`` fail as if it were not installed (undone at the end of the test)."""
    for name in list(sys.modules):
        if any(name == module or name.startswith(module + ".") for module in modules):
            monkeypatch.setitem(sys.modules, name, None)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_import_companion_imports_no_extra() -> None:
    """Beyond what ``import torch`` imports itself: torch.hub imports tqdm when it is installed."""
    code = (
        "import sys, torch\n"
        f"before = {{name for name in {EXTRAS!r} if name in sys.modules}}\n"
        "import companion, companion.pde, companion.presnov, companion.structured, companion.lipschitz\n"
        f"print(sorted(name for name in {EXTRAS!r} if name in sys.modules and name not in before))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"import companion imported {result.stdout.strip()}"


@pytest.mark.parametrize("module", ["companion.plotting", "companion.pde.plots", "companion.structured.figures"])
def test_figures_without_matplotlib_name_the_plots_extra(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    hide(monkeypatch, "matplotlib")
    for name in ("companion.plotting", "companion.pde.plots", "companion.structured.figures"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    message = f"{module} draws with matplotlib, which is not installed: pip install 'companion[plots]'"
    with pytest.raises(ModuleNotFoundError, match=re.escape(message)):
        importlib.import_module(module)


def test_digits_without_scikit_learn_names_the_data_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "sklearn")
    message = (
        "companion.digits loads its images with scikit-learn, which is not installed: pip install 'companion[data]'"
    )
    with pytest.raises(ModuleNotFoundError, match=re.escape(message)):
        C.digits()


def _tiny_fit(**options) -> C.History:
    x = torch.linspace(-1, 1, 64).reshape(32, 2)
    model = nn.Linear(2, 1)
    model.load_state_dict({"weight": torch.zeros(1, 2), "bias": torch.zeros(1)})
    return C.fit(model, (x, x.sum(1, keepdim=True)), epochs=2, batch_size=16, **options)


def test_fit_draws_its_bar_by_default_when_tqdm_is_installed(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    _tiny_fit()
    assert "training" in capsys.readouterr().err
    _tiny_fit(progress=False)
    assert "training" not in capsys.readouterr().err


def test_fit_without_tqdm_trains_without_a_bar_or_names_the_progress_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hide(monkeypatch, "tqdm")
    with_default, without_bar = _tiny_fit(), _tiny_fit(progress=False)
    assert with_default.loss == without_bar.loss and len(with_default.loss) == 2
    assert "training" not in capsys.readouterr().err
    message = (
        "companion.fit(progress=True) draws its bar with tqdm, which is not installed: "
        "pip install 'companion[progress]'"
    )
    with pytest.raises(ModuleNotFoundError, match=re.escape(message)):
        _tiny_fit(progress=True)


def test_fit_refuses_a_progress_that_is_not_a_bool() -> None:
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        _tiny_fit(progress="yes")


def test_import_optional_passes_on_an_error_inside_an_installed_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "broken_optional_module.py").write_text("import a_module_that_does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as error:
        import_optional("broken_optional_module", "plots", "a test needs broken_optional_module")
    assert error.value.name == "a_module_that_does_not_exist_anywhere" and "companion[" not in str(error.value)
    assert import_optional("math", "plots", "a test needs math") is importlib.import_module("math")


def test_the_core_is_torch_and_numpy_and_every_named_extra_exists() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(re.match(r"[A-Za-z0-9_.\-]+", d).group() for d in project["dependencies"]) == ["numpy", "torch"]
    extras = project["optional-dependencies"]
    named = set()
    for path in (ROOT / "companion").rglob("*.py"):
        named |= set(re.findall(r"import_optional\(\s*\"[\w.]+\",\s*\"(\w+)\"", path.read_text()))
    assert named == {"plots", "data", "progress"}, named
    for extra in named:
        assert extra in extras, f"the code names companion[{extra}], which pyproject.toml does not define"
    for bundle in ("test", "notebooks"):
        assert "companion[plots,data,progress]" in extras[bundle], f"the {bundle} extra must pull in every extra"
