"""Input validation shared by the public functions of :mod:`companion`.

Every public function validates at its boundary and raises ``TypeError`` or
``ValueError`` with a message that says what was expected, what came and what
to do. These helpers keep those messages uniform.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch

__all__ = [
    "check_tensor",
    "check_positive",
    "check_positive_int",
    "check_even",
    "check_choice",
    "check_callable",
    "import_optional",
    "check_not_empty",
    "check_labels",
    "dtype_mismatch",
    "explain_dtype_errors",
    "call_model",
]


def check_tensor(
    x: Any,
    name: str,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    last_dim: int | None = None,
    floating: bool = True,
) -> torch.Tensor:
    """Check that ``x`` is a tensor with the expected rank, last dimension and dtype kind."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with torch.as_tensor(...).")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}.")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {tuple(x.shape)}.")
    if last_dim is not None and (x.ndim == 0 or x.shape[-1] != last_dim):
        raise ValueError(
            f"{name} must have last dimension {last_dim}, got shape {tuple(x.shape)}; "
            "pass a (batch, dim) tensor matching the layer's dim."
        )
    if floating and not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; use x.double() or x.float().")
    return x


def check_positive(value: Any, name: str) -> float:
    """Check that ``value`` is a finite real number > 0 and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a positive number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def check_positive_int(value: Any, name: str) -> int:
    """Check that ``value`` is an int >= 1 and return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 1, got {value!r} of type {type(value).__name__}.")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value}.")
    return value


def check_even(value: Any, name: str) -> int:
    """Check that ``value`` is an even int >= 2 (a partitioned state such as (q, p))."""
    check_positive_int(value, name)
    if value % 2:
        raise ValueError(
            f"{name} must be even: the state is split into two halves (q, p) or (x, v), got {name}={value}."
        )
    return value


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}.")
    return value


def check_callable(value: Any, name: str) -> Any:
    """Check that ``value`` can be called."""
    if not callable(value):
        raise TypeError(f"{name} must be callable (a function or nn.Module), got {type(value).__name__}.")
    return value


def import_optional(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, an optional dependency of companion, or say which extra installs it.

    ``what`` says who needs it and for what, e.g. ``"companion.plotting draws with matplotlib"``; the error reads
    ``"<what>, which is not installed: pip install 'companion[<extra>]'"``. Only the absence of ``module`` itself
    (or a package above it) is translated: an error raised inside an installed module propagates unchanged.

    Raises
    ------
    ModuleNotFoundError
        If ``module`` is not installed, naming the extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        parts = module.split(".")
        if error.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise
        raise ModuleNotFoundError(
            f"{what}, which is not installed: pip install 'companion[{extra}]'", name=error.name
        ) from error


def check_not_empty(x: torch.Tensor, name: str) -> torch.Tensor:
    """Check that ``x`` holds at least one sample (a non-empty first dimension)."""
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {tuple(x.shape)}.")
    return x


def check_labels(labels: torch.Tensor, classes: int, name: str = "labels") -> torch.Tensor:
    """Check that every entry of ``labels`` is a class index in ``[0, classes)``, ``classes`` the model's outputs."""
    if len(labels) and (bool((labels < 0).any()) or bool((labels >= classes).any())):
        raise ValueError(
            f"{name} must be class indices 0..{classes - 1} (the model has {classes} outputs), got values from "
            f"{int(labels.min())} to {int(labels.max())}; check that the labels belong to this model's classes."
        )
    return labels


_CONVERSIONS = {
    torch.float32: "float()",
    torch.float64: "double()",
    torch.float16: "half()",
    torch.bfloat16: "bfloat16()",
}


def _parameter_dtype(model: Any) -> torch.dtype | None:
    """The floating dtype shared by every floating parameter of ``model`` (``None`` if none or several)."""
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return None
    dtypes = {p.dtype for p in parameters() if torch.is_floating_point(p)}
    return dtypes.pop() if len(dtypes) == 1 else None


def dtype_mismatch(model: Any, inputs: torch.Tensor, name: str = "inputs") -> TypeError | None:
    """A ``TypeError`` that names both dtypes and the fix, when ``inputs`` do not have the dtype of ``model``'s
    parameters; ``None`` when they do (or the model's dtype is not one floating dtype)."""
    dtype = _parameter_dtype(model)
    if dtype is None or inputs.dtype == dtype:
        return None
    fixes = f"the inputs (x.{_CONVERSIONS.get(dtype, f'to({dtype})')})"
    if torch.is_floating_point(inputs):
        fixes = f"the model (model.{_CONVERSIONS.get(inputs.dtype, f'to({inputs.dtype})')}) or " + fixes
    return TypeError(f"{name} have dtype {inputs.dtype} but the model's parameters are {dtype}; convert {fixes}.")


@contextmanager
def explain_dtype_errors(model: Any, inputs: torch.Tensor, name: str = "inputs") -> Iterator[None]:
    """Run the block; a PyTorch dtype error raised in it, with ``inputs`` not of ``model``'s dtype, becomes the
    ``TypeError`` of :func:`dtype_mismatch` (other errors pass unchanged). No cost unless an error is raised."""
    try:
        yield
    except RuntimeError as error:
        mismatch = dtype_mismatch(model, inputs, name)
        if mismatch is not None and "type" in str(error).lower():
            raise mismatch from error
        raise


def call_model(model: Any, inputs: torch.Tensor, name: str = "inputs") -> Any:
    """``model(inputs)``; a dtype error of PyTorch becomes a ``TypeError`` naming both dtypes and the fix."""
    with explain_dtype_errors(model, inputs, name):
        return model(inputs)
