r"""Inference at the cost of plain layers: what a layer derives from its weights, computed once in eval mode.

A constrained layer derives, on every forward pass, quantities from its parameters: the exact norm
:math:`\lVert A\rVert_2` (an SVD) of :class:`~companion.lipschitz.layers.NonExpansiveLayer`'s step bound and of
:class:`~companion.lipschitz.layers.NormalizedLinear`, the orthogonal matrices of
:class:`~companion.lipschitz.switching.SwitchingLayer` (a matrix exponential and a QR factorisation), a
convolution's operator norm. In training these must follow the weights and carry their gradients; at inference
they are the same on every call, and cost more than the layer's own products.

:class:`DerivedCache` computes them once and reuses them while

- the module is in eval mode (``model.eval()``),
- no gradient can flow to the tensors they derive from (``torch.no_grad()``, tensors that do not require a
  gradient, or a block of :func:`inputs_only`, in which the attacks run: they differentiate with respect to the
  inputs only),
- those tensors (the weights as the layer reads them, through a parametrisation if it has one) hold the values
  the cache was made from, compared element by element with a copy (not a version counter, so an edit through
  ``.data`` or a ``load_state_dict`` is seen too), and the layer's settings (e.g. its padding) are the same,
- and nothing traces or transforms the call: ``torch.compile``, ``torch.func``, forward-mode AD and
  ``torch.inference_mode`` compute afresh.

Otherwise the quantities are computed as before, so training, gradients with respect to the weights and every
guarantee are unchanged; a cached value is the value the layer would compute (the same operations, once). Copies
(``deepcopy``, pickle, ``torch.save``) do not carry the cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.autograd import forward_ad

__all__ = ["DerivedCache", "inputs_only"]

_CACHE = "_derived_cache"
_LOCAL = threading.local()


def _traced(tensors) -> bool:
    """A value ``torch.func``, ``torch.compile`` or forward-mode AD traces: never cached."""
    if torch.compiler.is_compiling() or forward_ad._current_level >= 0:
        return True
    return any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def _same(saved: tuple[torch.Tensor, ...], current: tuple[torch.Tensor, ...]) -> bool:
    if len(saved) != len(current):
        return False
    return all(
        a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)
        for a, b in zip(saved, current)
    )


def _copied(value):
    return tuple(_copied(v) for v in value) if isinstance(value, tuple) else value.clone()


class DerivedCache:
    """Mixin for an ``nn.Module``: :meth:`derived` caches a weight-derived value in eval mode (module text)."""

    def derived(self, name: str, compute: Callable[[], object], *inputs: torch.Tensor):
        """``compute()``, a function of the tensors ``inputs`` and of the module's settings, or the value it gave
        before for the same inputs and settings when inference allows it."""
        if torch.compiler.is_compiling():  # first, so that tracing meets no other check (no graph break)
            return compute()
        needs_grad = torch.is_grad_enabled() and not getattr(_LOCAL, "inputs_only", False)
        if self.training or (needs_grad and any(t.requires_grad for t in inputs)):
            return compute()
        if torch.is_inference_mode_enabled() or _traced(inputs):
            return compute()
        settings = tuple((key, getattr(self, key, None)) for key in getattr(self, "_settings", ()))
        cache = self.__dict__.setdefault(_CACHE, {})
        hit = cache.get(name)
        if hit is not None and hit[0] == settings and _same(hit[1], inputs):
            return _copied(hit[2])  # a copy: an in-place edit of what the layer returns cannot reach the cache
        with torch.no_grad():
            value = compute()
        cache[name] = (settings, tuple(t.detach().clone() for t in inputs), value)
        return _copied(value)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop(_CACHE, None)
        return state


@contextmanager
def inputs_only() -> Iterator[None]:
    """In this block, in this thread, nothing differentiates with respect to the layers' parameters: they reuse
    their cached derived values in eval mode even where the parameters require a gradient (the values carry none).
    For computations that take gradients with respect to inputs only (the attacks); the parameters themselves,
    and other threads, are left alone."""
    before = getattr(_LOCAL, "inputs_only", False)
    _LOCAL.inputs_only = True
    try:
        yield
    finally:
        _LOCAL.inputs_only = before
