r"""Inference at the cost of plain layers: what a layer derives from its weights, computed once in eval mode.

A constrained layer derives, on every forward pass, quantities from its parameters: the exact norm
:math:`\lVert A\rVert_2` (an SVD) of :class:`~companion.lipschitz.layers.NonExpansiveLayer`'s step bound and of
:class:`~companion.lipschitz.layers.NormalizedLinear`, the orthogonal matrices of
:class:`~companion.lipschitz.switching.SwitchingLayer` (a matrix exponential and a QR factorisation), a
convolution's operator norm. In training these must follow the weights and carry their gradients; at inference
they are the same on every call, and cost more than the layer's own products.

:class:`DerivedCache` computes them once and reuses them while

- the module is in eval mode (``model.eval()``),
- no gradient can flow to its parameters (``torch.no_grad()``, or parameters that do not require a gradient, as in
  :func:`frozen_parameters`, which the attacks use: they differentiate with respect to the inputs only),
- its parameters and buffers hold the values the cache was made from: compared element by element (``torch.equal``
  with a copy, not a version counter, so an edit through ``.data`` or a ``load_state_dict`` is seen too),
- and nothing traces the call (``torch.compile``, ``torch.func`` transforms compute afresh), nor runs it in
  ``torch.inference_mode`` (whose tensors could not be reused where a gradient with respect to inputs is taken).

Otherwise the quantities are computed as before, so training, gradients with respect to the weights and every
guarantee are unchanged; a cached value is the value the layer would compute (the same operations, once). Copies
(``deepcopy``, pickle, ``torch.save``) do not carry the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["DerivedCache", "frozen_parameters"]

_CACHE = "_derived_cache"


def _traced(tensors) -> bool:
    """A value ``torch.func`` or ``torch.compile`` traces: never cached."""
    if torch.compiler.is_compiling():
        return True
    return any(torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def _same(saved: tuple[torch.Tensor, ...], current: tuple[torch.Tensor, ...]) -> bool:
    if len(saved) != len(current):
        return False
    return all(
        a.dtype == b.dtype and a.device == b.device and a.shape == b.shape and torch.equal(a, b)
        for a, b in zip(saved, current)
    )


class DerivedCache:
    """Mixin for an ``nn.Module``: :meth:`derived` caches a weight-derived value in eval mode (module text)."""

    def derived(self, name: str, compute: Callable[[], object]):
        """``compute()``, or the value it gave before for the same parameters when inference allows it."""
        state = tuple(self.parameters(recurse=False)) + tuple(self.buffers(recurse=False))
        grad_possible = torch.is_grad_enabled() and any(t.requires_grad for t in state)
        if self.training or grad_possible or torch.is_inference_mode_enabled() or _traced(state):
            return compute()
        cache = self.__dict__.setdefault(_CACHE, {})
        hit = cache.get(name)
        if hit is not None and _same(hit[0], state):
            return hit[1]
        value = compute()
        cache[name] = (tuple(t.detach().clone() for t in state), value)
        return value

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop(_CACHE, None)
        return state


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Within the block no parameter of ``model`` requires a gradient (inputs still can); afterwards each has its
    own ``requires_grad`` back. For computations that differentiate with respect to inputs only (attacks)."""
    changed = [p for p in model.parameters() if p.requires_grad]
    for p in changed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in changed:
            p.requires_grad_(True)
