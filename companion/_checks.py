"""Input validation shared by the public functions of :mod:`companion`.

Every public function validates at its boundary and raises ``TypeError`` or
``ValueError`` with a message that says what was expected, what came and what
to do. These helpers keep those messages uniform.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import torch

__all__ = [
    "check_tensor",
    "check_positive",
    "check_scalar",
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
    "check_step",
    "check_time",
    "start_time",
    "check_times",
    "field_call_error",
    "explain_field_calls",
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
    """Check that ``value`` is a finite real scalar > 0 (as :func:`check_scalar`) and return it as a float.

    A tensor is read as its value; one that requires grad is refused, since a number keeps no gradient.
    """
    if isinstance(value, torch.Tensor) and value.requires_grad:
        raise ValueError(
            f"{name} is kept as a number, so the gradient of the tensor given would be lost; pass {name}=float(...) "
            "(a layer learns its step with learn_step=True)."
        )
    return float(check_scalar(value, name, sign="positive"))


_SIGN_RULES = {
    "positive": ("a finite number > 0", lambda number: number > 0),
    "nonzero": ("a finite non-zero number (a negative step integrates backward in time)", lambda number: number != 0),
    "finite": ("a finite number", lambda number: True),
}


def check_scalar(value: Any, name: str, *, sign: str = "positive", what: str = "number") -> float | torch.Tensor:
    """Check a real scalar by the package's one rule, and return it as a float or a 0-d tensor.

    A scalar is a Python or NumPy real number (``0.1``, ``np.float32(0.1)``; not a bool), returned as a float, or a
    floating-point tensor with one element (a 0-d tensor; a one-element tensor of any shape is read as its value),
    returned 0-d, with its graph. Its value must be finite, and ``> 0`` (``sign="positive"``), ``!= 0``
    (``"nonzero"``) or anything (``"finite"``). A tensor's value is checked outside ``torch.compile`` only, where
    reading it would break the graph. ``what`` names the quantity in messages (``"step size"``, ``"time"``).

    Raises
    ------
    TypeError
        If ``value`` is a bool, a complex number, a string or another object, or an integer or complex tensor.
    ValueError
        If a tensor has more than one element, or the value is not finite or has the wrong sign.
    """
    rule, holds = _SIGN_RULES[sign]
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a scalar {what}: a number or a floating scalar tensor (one element), "
                f"got a tensor of shape {tuple(value.shape)}."
            )
        if not torch.is_floating_point(value):
            raise TypeError(
                f"{name} must be a floating-point scalar tensor or a number, got a tensor of dtype {value.dtype}; "
                "convert it with .double() or .float()."
            )
        value = value.reshape(())
        if not torch.compiler.is_compiling():
            number = value.detach().item()
            if not (math.isfinite(number) and holds(number)):
                raise ValueError(f"{name} must be {rule}, got the tensor {number!r}.")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a finite number (a Python or NumPy real number) or a floating scalar tensor, "
            f"got {value!r} of type {type(value).__name__}."
        )
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not (math.isfinite(number) and holds(number)):
        raise ValueError(f"{name} must be {rule}, got {value!r}.")
    return number


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


def check_step(h: Any, name: str = "h") -> float | torch.Tensor:
    """The step of a routine (not a layer): a real scalar (:func:`check_scalar`), finite and non-zero, a negative
    step integrating backward in time. Layers keep their step positive (:func:`check_positive`, where it is set)."""
    return check_scalar(h, name, sign="nonzero", what="step size")


def check_time(t: Any, name: str) -> float | torch.Tensor:
    """A time: a finite real scalar (:func:`check_scalar`), as a float or a 0-d tensor."""
    return check_scalar(t, name, sign="finite", what="time")


def start_time(time_dependent: Any, t: Any, name: str) -> float | torch.Tensor | None:
    """The start time for a field ``f(t, x)`` (default 0), or ``None`` for an autonomous field ``f(x)``."""
    if not isinstance(time_dependent, bool):
        raise TypeError(f"time_dependent must be True or False, got {time_dependent!r}.")
    if not time_dependent:
        if t is not None:
            raise ValueError(
                f"{name} is the time passed to a field f(t, x); pass time_dependent=True for such a field "
                f"(an autonomous field f(x) takes no time)."
            )
        return None
    return 0.0 if t is None else check_time(t, name)


def check_times(t: Any, like: torch.Tensor, name: str = "t") -> torch.Tensor:
    """Check observation times and return them as a 1-D tensor on ``like``'s device, in at least its dtype.

    ``t`` is a 1-D floating tensor (its graph kept) or a sequence of real scalars (as :func:`check_scalar`): at least
    two finite times, strictly increasing or strictly decreasing, as ``torchdiffeq.odeint`` requires.

    Raises
    ------
    TypeError
        If ``t`` is not a tensor or a sequence of real scalars.
    ValueError
        If ``t`` is not 1-D, has fewer than two times, or they are not finite and strictly monotone.
    """
    if not isinstance(t, torch.Tensor):
        if isinstance(t, (str, bytes)) or not isinstance(t, Sequence):
            raise TypeError(f"{name} must be a 1-D tensor or a list of times, got {type(t).__name__}.")
        t = torch.tensor(
            [float(check_scalar(time, f"{name}[{i}]", sign="finite", what="time")) for i, time in enumerate(t)],
            dtype=torch.float64,
        )
    elif not torch.is_floating_point(t):
        raise TypeError(f"{name} must be a floating-point tensor of times, got dtype {t.dtype}; use t.double().")
    if t.ndim != 1 or len(t) < 2:
        raise ValueError(f"{name} must be a 1-D list of at least two times, got shape {tuple(t.shape)}.")
    times = t.to(device=like.device, dtype=torch.promote_types(t.dtype, like.dtype))
    values = times.detach().cpu()
    gaps = values[1:] - values[:-1]
    if not (bool(torch.isfinite(values).all()) and (bool((gaps > 0).all()) or bool((gaps < 0).all()))):
        raise ValueError(
            f"{name} must be finite times, strictly increasing or strictly decreasing (as for torchdiffeq.odeint), "
            f"got {values.tolist()}."
        )
    return times


def _positional_arity(f: Any) -> tuple[int, int | None] | None:
    """The numbers of required and allowed positional arguments of ``f`` (``None``: any), or ``None`` if unknown."""
    try:
        signature = inspect.signature(f.forward if isinstance(f, torch.nn.Module) else f)
    except (TypeError, ValueError):  # a builtin or an object without a readable signature
        return None
    required, allowed = 0, 0
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            allowed = None
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            required += parameter.default is parameter.empty
            allowed = None if allowed is None else allowed + 1
    return required, allowed


def field_call_error(f: Any, time_dependent: bool, name: str = "the field") -> TypeError | None:
    """A ``TypeError`` saying how to pass ``f``, when its signature cannot take the call that ``time_dependent``
    asks for (``f(t, x)`` or ``f(x)``); ``None`` when it can, or when the signature cannot be read."""
    arity = _positional_arity(f)
    if arity is None:
        return None
    required, allowed = arity
    if time_dependent and allowed is not None and allowed < 2:
        return TypeError(
            f"{name} takes (x) alone: drop time_dependent=True (with it the field is called as f(t, x), the "
            "convention of torchdiffeq), or write the field as f(t, x)."
        )
    if not time_dependent and required >= 2:
        return TypeError(
            f"{name} takes (t, x): pass time_dependent=True (without it the field is called as f(x), the state alone)."
        )
    return None


@contextmanager
def explain_field_calls(f: Any, time_dependent: bool) -> Iterator[None]:
    """Run the block; a ``TypeError`` raised in it, when ``f``'s signature cannot take the call of ``time_dependent``,
    becomes the error of :func:`field_call_error` (other errors pass unchanged). No cost unless an error is raised."""
    try:
        yield
    except TypeError as error:
        hint = field_call_error(f, time_dependent)
        if hint is None:
            raise
        raise hint from error
