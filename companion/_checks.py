"""Input validation shared by the public functions of :mod:`companion`.

Every public function validates at its boundary and raises ``TypeError`` or
``ValueError`` with a message that says what was expected, what came and what
to do. These helpers keep those messages uniform.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch

__all__ = [
    "check_tensor",
    "check_positive",
    "check_positive_int",
    "check_even",
    "check_choice",
    "check_callable",
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
