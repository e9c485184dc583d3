r"""A trained 1-Lipschitz network as plain layers: the same function, no norm computed per call.

:class:`~companion.lipschitz.layers.NonExpansiveLayer` and
:class:`~companion.lipschitz.layers.NormalizedLinear` derive their step and normalised weight from their
parameters on every call (an SVD each), which keeps them 1-Lipschitz whatever the parameters become during
training. Once training is over, :func:`export` freezes those derived values: each non-expansive layer becomes a
:class:`PlainGradientStep` with its step stored, each normalised map an ``nn.Linear`` holding the normalised
weight. The exported network computes, operation for operation, what the trained one computes, so its outputs
are the same (bit for bit on one machine), and a forward pass costs two matrix products per layer.

Its certificate still holds, and does not take the export on trust:
:func:`~companion.lipschitz.layers.network_lipschitz_bound` gives an ``nn.Linear`` its exact norm and a
:class:`PlainGradientStep` the bound of :meth:`PlainGradientStep.lipschitz_bound`, both recomputed from the
stored tensors, so an edited export (a larger step, a rescaled weight) is certified at its true size; the rounding
of its forward pass is bounded stage by stage as for the trained layers (:mod:`companion.lipschitz.rounding`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .._checks import check_choice, check_tensor
from .._settings import FixedSettings
from .layers import ACTIVATIONS, NonExpansiveLayer, NormalizedLinear, Standardize, monotone_activation

__all__ = ["PlainGradientStep", "export"]

#: Parameter-free modules (and a plain linear map) that ``export`` copies unchanged.
_COPIED = (nn.Linear, Standardize, nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Identity, nn.Flatten)


class PlainGradientStep(FixedSettings, nn.Module):
    r"""A gradient step with fixed tensors: :math:`x\mapsto x-hA^\top\sigma(Ax+b)`.

    What :class:`~companion.lipschitz.layers.NonExpansiveLayer` computes, with its step :math:`h` stored instead
    of derived from :math:`A` on every call. :math:`A`, :math:`b` and :math:`h` are buffers (saved, restored and
    moved with the module, never trained).

    Parameters
    ----------
    weight, bias, step : torch.Tensor
        :math:`A` of shape ``(hidden, dim)``, :math:`b` of shape ``(hidden,)`` and the scalar :math:`h`.
    activation : {"relu", "leaky_relu", "tanh"}
        :math:`\sigma`.
    negative_slope : float
        Slope of ``leaky_relu`` for negative inputs, in [0, 1].

    Raises
    ------
    ValueError
        On shapes that do not fit, an unknown activation, a slope outside [0, 1] or a step that is not a
        finite scalar.
    """

    _settings = ("activation", "negative_slope")

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        step: torch.Tensor,
        *,
        activation: str = "relu",
        negative_slope: float = 0.01,
    ) -> None:
        super().__init__()
        if weight.ndim != 2 or bias.shape != weight.shape[:1] or step.numel() != 1:
            raise ValueError(
                f"weight (hidden, dim), bias (hidden,) and a scalar step expected, got shapes "
                f"{tuple(weight.shape)}, {tuple(bias.shape)} and {tuple(step.shape)}."
            )
        if not torch.isfinite(step).all():
            raise ValueError(f"the step must be finite, got {float(step)}.")
        self._configure(activation=activation, negative_slope=negative_slope)
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())
        self.register_buffer("step", step.detach().clone().reshape(()))

    def _configure(self, *, activation: str, negative_slope: float) -> None:
        check_choice(activation, "activation", ACTIVATIONS)
        if not (isinstance(negative_slope, (int, float)) and 0 <= negative_slope <= 1):
            raise ValueError(f"negative_slope must be a number in [0, 1], got {negative_slope!r}.")
        self.activation, self.negative_slope = activation, float(negative_slope)

    def lipschitz_bound(self) -> float:
        r""":math:`\max(1, \lvert 1-h\lVert A\rVert_2^2\rvert)`, from the stored tensors (exact norm, float64).

        The step's Jacobian (or difference quotient) is :math:`I-hA^\top DA` with :math:`D` diagonal, entries
        in [0, 1], so its eigenvalues are :math:`1-h\lambda`, :math:`\lambda\in[0,\lVert A\rVert_2^2]`: the bound
        is 1 exactly when :math:`0\le h\le 2/\lVert A\rVert_2^2` (the condition the trained layer enforced) and
        grows with any edit that breaks it."""
        weight, step = self.weight.detach().double(), float(self.step)
        if not (math.isfinite(step) and bool(torch.isfinite(weight).all())):
            return math.inf  # a NaN or infinite stored tensor (e.g. loaded): nothing is certified
        norm_squared = float(torch.linalg.matrix_norm(weight, ord=2)) ** 2
        bound = abs(1.0 - step * norm_squared)
        return max(1.0, bound) if math.isfinite(bound) else math.inf

    def sigma(self, s: torch.Tensor) -> torch.Tensor:
        """The activation :math:`\\sigma`."""
        return monotone_activation(s, self.activation, self.negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", last_dim=self.weight.shape[1])
        return x - self.step * (self.sigma(x @ self.weight.T + self.bias) @ self.weight)


def _export(module: nn.Module) -> nn.Module:
    if module._forward_hooks or module._forward_pre_hooks:
        raise TypeError(f"{type(module).__name__} has forward hooks, which export would not carry over.")
    if type(module) is nn.Sequential:
        return nn.Sequential(*[_export(child) for child in module])
    if type(module) is NonExpansiveLayer:
        return PlainGradientStep(
            module.weight,
            module.bias,
            module.step(),
            activation=module.activation,
            negative_slope=module.negative_slope,
        )
    if type(module) is NormalizedLinear:
        linear = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        linear = linear.to(device=module.weight.device, dtype=module.weight.dtype)
        linear.weight.copy_(module.normalized_weight())
        if module.bias is not None:
            linear.bias.copy_(module.bias)
        return linear
    if type(module) in _COPIED:
        return copy.deepcopy(module)
    raise TypeError(
        f"export has no plain version of {type(module).__name__}: it exports nn.Sequential models of "
        "NonExpansiveLayer, NormalizedLinear, Standardize, nn.Linear and elementwise activations. Other layers "
        "(e.g. SwitchingLayer, NonExpansiveConvLayer) cache their derived values in eval mode instead: keep the "
        "module and call model.eval()."
    )


def export(model: nn.Module) -> nn.Module:
    """The trained ``model`` as plain layers computing the same function, in eval mode, with nothing to train.

    Each :class:`~companion.lipschitz.layers.NonExpansiveLayer` becomes a :class:`PlainGradientStep` holding
    the step it uses now, each :class:`~companion.lipschitz.layers.NormalizedLinear` an ``nn.Linear`` holding
    its normalised weight; ``Standardize``, ``nn.Linear`` and elementwise activations are copied. ``model`` is
    left as it was. Certify the export with :func:`~companion.lipschitz.layers.network_lipschitz_bound` of the
    export itself (it recomputes every bound from the stored tensors).

    Raises
    ------
    TypeError
        On a module with no plain version (the message names it), or one with forward hooks.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}.")
    with torch.no_grad():
        exported = _export(model)
    exported.requires_grad_(False)
    return exported.eval()
