r"""The rounding of a forward pass, bounded from the values it really computes: the allowance behind certified radii.

A certified radius claims that the model, **evaluated in floating point**, gives every :math:`y` with
:math:`\lVert y-x\rVert_2 < r(x)` the class it gives :math:`x`. The Lipschitz bound :math:`L` covers the exact
function; the rounding of the two evaluations (at :math:`x` and at :math:`y`) must be bounded as well, and it is
not proportional to the size of the logits: a bias of :math:`10^8` that a later bias cancels leaves small logits
and the function unchanged, but makes float32 logits wrong by about 8. :func:`forward_rounding` bounds it from
the sizes of the values each stage of the network computes.

**The bound.** Let the model be stages :math:`g_1,\dots,g_S` (the modules of an ``nn.Sequential``, nested ones
unrolled, and the sub-steps inside the layers of ``companion.lipschitz``), :math:`\ell_s` the Lipschitz bound of
:math:`g_s`. For each stage a *work size* :math:`w_s(z)\ge0` is measured at its computed input :math:`z` (below),
with :math:`\lvert w_s(z)-w_s(z')\rvert\le c_s\lVert z-z'\rVert`. Assume (R): the computed
:math:`\hat g_s(z)` satisfies :math:`\lVert\hat g_s(z)-g_s(z)\rVert_2\le\rho_s\,w_s(z)` for every float :math:`z`.
Then, for the computed stage outputs at :math:`x` and :math:`y`,
:math:`d_s\le(\ell_s+\rho_sc_s)\,d_{s-1}+2\rho_s w_s` with :math:`d_0=\lVert y-x\rVert`. Splitting
:math:`\hat f(y)-\hat f(x)` into the exact :math:`f(y)-f(x)`, of norm at most :math:`L\lVert y-x\rVert` for the
network's bound :math:`L`, and the two rounding errors (each a telescoping sum of the stages' errors carried by
the exact later stages), the same recursion gives

.. math::

   \lVert\hat f(y)-\hat f(x)\rVert_2 &\le \alpha(x) + \beta\,\lVert y-x\rVert_2,\\
   \alpha &= \textstyle\sum_s 2\rho_s w_s\prod_{t>s}(\ell_t+\rho_tc_t),\\
   \beta &= L + \prod_s(\ell_s+\rho_sc_s) - \prod_s\ell_s .

**Why (R) holds, with** :math:`\rho_s=\gamma_{n_s+4}=(n_s+4)u/(1-(n_s+4)u)`, :math:`u` the unit roundoff and
:math:`n_s` the longest dot product of the stage. A dot product of length :math:`n`, summed in any order, errs by
at most :math:`\gamma_n\sum_j\lvert a_jb_j\rvert` (Higham 2002, §3.1), so a linear map errs, in :math:`\ell_2`,
by at most :math:`\gamma_{n+1}(\lVert W\rVert_F\lVert z\rVert+\lVert b\rVert)`, however the terms cancel. Per stage
(norms per sample, :math:`N=\lVert A\rVert_2`, :math:`F=\lVert A\rVert_F`, for a :math:`k\times k` convolution
:math:`F=k\lVert K\rVert_F`, :math:`t=\sigma(Az+b)`):

* ``Linear``, :class:`~companion.lipschitz.layers.NormalizedLinear` (with its normalised weight :math:`W`):
  :math:`w=\lVert W\rVert_F\lVert z\rVert+\lVert b\rVert` (the bias counted once per position where it is
  added, e.g. per pixel of a convolution);
* a gradient step :math:`z\mp hA^\top\sigma(Az+b)` (:class:`~companion.lipschitz.layers.NonExpansiveLayer`,
  :class:`~companion.lipschitz.layers.NonExpansiveConvLayer`, each sub-step of a
  :class:`~companion.lipschitz.switching.SwitchingLayer`): the pre-activation's error passes :math:`\sigma` and
  :math:`hA^\top` (gain :math:`hN`), the second product errs by :math:`\gamma hF\lVert t\rVert`, the last
  operations by :math:`u` of their results:
  :math:`w=hN(F\lVert z\rVert+\lVert b\rVert)+h(F+(\kappa+1)N)\lVert t\rVert+\lVert z^+\rVert`, with
  :math:`\kappa=0` for ReLU, 1 for LeakyReLU, 4 for tanh (accurate to 2 ulp);
* :class:`~companion.lipschitz.layers.Standardize`: :math:`w=2\lVert(z-\mu)/s\rVert`; ReLU, Identity, Flatten:
  exact, :math:`w=0`; LeakyReLU: :math:`w=\lVert g(z)\rVert`; Tanh: :math:`w=4\lVert g(z)\rVert`.

The bound is first order in :math:`u`: the sizes are measured on computed values, which differ from the exact
ones by order :math:`u`, so the terms left out are of relative size :math:`\rho_sc_s` (below :math:`10^{-3}` in
float32 for the book's networks). It assumes IEEE arithmetic in the dtype of the data, with a float32 matrix
product or convolution that PyTorch may run in TF32 or bfloat16 (``torch.set_float32_matmul_precision``,
``torch.backends.cudnn.allow_tf32``, on by default for convolutions on a GPU) given that format's :math:`u`.
The rounding of the norms inside :math:`L` is not part of :math:`\alpha,\beta`: the callers enlarge both by
:math:`(1+\rho)`, :math:`\rho` = :func:`~companion.lipschitz.robustness.rounding_allowance`.

A module that is none of the above (or a model that is not an ``nn.Sequential``) is one opaque stage: its
rounding is *assumed* to be at most :math:`\rho\,(\lVert z\rVert+\lVert g(z)\rVert)` with
:math:`\rho=1024u`, true for ordinary weights but not proven for crafted ones.

References
----------
N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM (2002), §3.1 and §3.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import call_model
from .layers import NonExpansiveConvLayer, NonExpansiveLayer, NormalizedLinear, Standardize, network_lipschitz_bound
from .operator_norms import conv2d_same, conv_operator_norm
from .plain import PlainGradientStep
from .switching import SwitchingLayer, _orthogonal, contractive_factor

__all__ = ["forward_rounding"]

#: The rounding of tanh and of a LeakyReLU's product, in units of u relative to the result (kappa above).
_ACTIVATION_ROUNDING = {"relu": 0.0, "leaky_relu": 1.0, "tanh": 4.0}


@dataclass
class _Stage:
    """One stage of the forward pass: its work size per sample (float64), the Lipschitz constant of the work size
    in the stage's input, the stage's Lipschitz bound, its longest dot product and its kind of arithmetic."""

    work: torch.Tensor
    sensitivity: float
    lipschitz: float
    length: int | None  # None: an opaque stage, allowed rho = 1024 u by assumption
    kind: str = "matmul"


def _norms(values: torch.Tensor) -> torch.Tensor:
    """Per-sample Euclidean norms, in float64 (no overflow for any float32 value)."""
    return values.detach().to(torch.float64).flatten(1).norm(dim=1)


def _norm(tensor: torch.Tensor | None) -> float:
    return 0.0 if tensor is None else float(tensor.detach().to(torch.float64).norm())


#: Unit roundoff of the reduced formats PyTorch may use for float32 products: bfloat16 and TF32.
_REDUCED = {"medium": 2.0**-8, "bf16": 2.0**-8, "high": 2.0**-11, "tf32": 2.0**-11}


def _unit_roundoff(dtype: torch.dtype, device: torch.device, kind: str) -> float:
    """The unit roundoff of the arithmetic PyTorch may use for a ``kind`` of operation on ``dtype`` data: the
    dtype's own, or that of TF32 / bfloat16 where a float32 product or convolution may run in it."""
    u = torch.finfo(dtype).eps / 2
    if dtype != torch.float32 or kind == "elementwise":
        return u
    backend = getattr(torch.backends, ("cudnn" if kind == "conv" else "cuda") if device.type == "cuda" else "mkldnn")
    operation = getattr(backend, "conv" if kind == "conv" else "matmul", None)
    settings = [torch.get_float32_matmul_precision()]  # and the finer settings of PyTorch >= 2.9, where present
    settings += [getattr(where, "fp32_precision", "none") for where in (torch.backends, backend, operation)]
    if device.type == "cuda" and kind == "conv" and torch.backends.cudnn.allow_tf32:
        settings.append("tf32")
    return max(u, *(_REDUCED.get(setting, u) for setting in settings))


def _gamma(length: int, u: float) -> float:
    r""":math:`\gamma_n = nu/(1-nu)` (infinite once :math:`nu\ge1`)."""
    return length * u / (1 - length * u) if length * u < 1 else math.inf


def _gradient_step(
    z,
    out,
    activated,
    h: float,
    norm: float,
    frobenius: float,
    bias: float,
    kappa: float,
    lipschitz: float,
    length: int,
    kind: str,
) -> _Stage:
    """The stage of one gradient step ``z -> out = z -+ h A^T t``, ``t = sigma(A z + b)`` given as ``activated``."""
    t = _norms(activated)
    work = h * norm * (frobenius * _norms(z) + bias) + h * (frobenius + (kappa + 1) * norm) * t + _norms(out)
    sensitivity = h * norm * frobenius + h * (frobenius + (kappa + 1) * norm) * norm + lipschitz
    return _Stage(work, sensitivity, lipschitz, length, kind)


def _linear(stage: nn.Linear, z: torch.Tensor, out: torch.Tensor) -> list[_Stage]:
    weight = stage.normalized_weight() if isinstance(stage, NormalizedLinear) else stage.weight
    frobenius, positions = _norm(weight), z[0].numel() // stage.in_features
    work = frobenius * _norms(z) + _norm(stage.bias) * math.sqrt(positions)
    return [_Stage(work, frobenius, network_lipschitz_bound(stage), stage.in_features + 1)]


def _dense_step(stage, z: torch.Tensor, out: torch.Tensor, step: float, lipschitz: float) -> list[_Stage]:
    """A dense gradient step ``z - step A^T sigma(A z + b)`` (a trained layer or its export)."""
    weight = stage.weight.detach().to(torch.float64)
    activated = stage.sigma(z @ stage.weight.T + stage.bias)
    return [
        _gradient_step(
            z,
            out,
            activated,
            step,
            float(torch.linalg.matrix_norm(weight, ord=2)),
            _norm(weight),
            _norm(stage.bias),
            _ACTIVATION_ROUNDING[stage.activation],
            lipschitz,
            max(weight.shape[1] + 1, weight.shape[0]),
            "matmul",
        )
    ]


def _non_expansive(stage: NonExpansiveLayer, z: torch.Tensor, out: torch.Tensor) -> list[_Stage]:
    return _dense_step(stage, z, out, float(stage.step().detach()), 1.0)


def _plain_step(stage: PlainGradientStep, z: torch.Tensor, out: torch.Tensor) -> list[_Stage]:
    """An exported step: the stored step (its size, whatever its sign) and the step's own bound."""
    return _dense_step(stage, z, out, abs(float(stage.step)), stage.lipschitz_bound())


def _non_expansive_conv(stage: NonExpansiveConvLayer, z: torch.Tensor, out: torch.Tensor) -> list[_Stage]:
    size = tuple(z.shape[-2:])
    kernel = stage.weight.detach().to(torch.float64)
    activated = stage.sigma(conv2d_same(z, stage.weight, stage.bias, padding_mode=stage.padding_mode))
    norm = float(conv_operator_norm(kernel, size, padding_mode=stage.padding_mode))
    k = stage.kernel_size
    length = max(stage.channels, stage.hidden_channels) * k * k + 1
    return [
        _gradient_step(
            z,
            out,
            activated,
            float(stage.step(size).detach()),
            norm,
            k * _norm(kernel),
            _norm(stage.bias) * math.sqrt(size[0] * size[1]),
            _ACTIVATION_ROUNDING[stage.activation],
            1.0,
            length,
            "conv",
        )
    ]


def _switching_substeps(stage: SwitchingLayer, z: torch.Tensor) -> list[tuple]:
    """The sub-steps of ``SwitchingLayer.forward`` (the expansive step, then the contractive ones), each as
    ``(input, activated, output, h, A, b, lipschitz)``; the last output is the layer's output to rounding."""
    h_c, h_e = (float(h.detach()) for h in stage.steps())
    u = h_c / stage.n_steps
    a_e, a_c = _orthogonal(stage.raw_expansive), _orthogonal(stage.raw_contractive)
    plan = [(a_e, stage.bias_expansive, h_e, 1.0, 1.0 + h_e)]
    plan += [
        (a_c, stage.bias_contractive, u, -1.0, float(contractive_factor(u, slope=stage.slope, n_steps=1)))
    ] * stage.n_steps
    substeps = []
    for a, bias, h, sign, lipschitz in plan:
        activated = F.leaky_relu(z @ a.T + bias, stage.slope)
        following = z + sign * h * (activated @ a)
        substeps.append((z, activated, following, h, a, bias, lipschitz))
        z = following
    return substeps


def _switching(stage: SwitchingLayer, z: torch.Tensor, out: torch.Tensor) -> list[_Stage]:
    """One stage per sub-step of the layer (each a gradient step with an orthogonal matrix and LeakyReLU)."""
    stages = []
    for start, activated, following, h, a, bias, lipschitz in _switching_substeps(stage, z):
        a64 = a.detach().to(torch.float64)
        stages.append(
            _gradient_step(
                start,
                following,
                activated,
                h,
                float(torch.linalg.matrix_norm(a64, ord=2)),
                _norm(a64),
                _norm(bias),
                1.0,
                lipschitz,
                stage.dim + 1,
                "matmul",
            )
        )
    return stages


def _elementwise(factor: float):
    def analyse(stage: nn.Module, z: torch.Tensor, out: torch.Tensor) -> list[_Stage]:
        lipschitz = network_lipschitz_bound(stage)
        return [_Stage(factor * _norms(out), factor * lipschitz, lipschitz, 1, "elementwise")]

    return analyse


#: The analysis of each known stage, by its ``forward`` (a subclass that overrides ``forward`` is not known).
_ANALYSES = {
    nn.Linear.forward: _linear,
    NormalizedLinear.forward: _linear,
    NonExpansiveLayer.forward: _non_expansive,
    NonExpansiveConvLayer.forward: _non_expansive_conv,
    PlainGradientStep.forward: _plain_step,
    SwitchingLayer.forward: _switching,
    Standardize.forward: _elementwise(2.0),
    nn.ReLU.forward: _elementwise(0.0),
    nn.Identity.forward: _elementwise(0.0),
    nn.Flatten.forward: _elementwise(0.0),
    nn.LeakyReLU.forward: _elementwise(1.0),
    nn.Tanh.forward: _elementwise(4.0),
}


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _stages(model: nn.Module) -> list[nn.Module] | None:
    """The stages of ``model`` in the order they run: nested ``nn.Sequential`` unrolled; ``None`` if any is unknown."""
    if isinstance(model, nn.Module) and type(model).forward is nn.Sequential.forward and not _hooked(model):
        stages = [_stages(child) for child in model]
        return None if any(s is None for s in stages) else [m for s in stages for m in s]
    if isinstance(model, nn.Module) and type(model).forward in _ANALYSES and not _hooked(model):
        try:
            network_lipschitz_bound(model)
        except TypeError:  # a LeakyReLU of slope > 1
            return None
        return [model]
    return None


def _opaque(model, inputs: torch.Tensor, outputs: torch.Tensor, lipschitz: float) -> list[_Stage]:
    work = _norms(inputs) + _norms(outputs)
    return [_Stage(work, 1.0 + lipschitz, lipschitz, None)]


def forward_rounding(
    model: nn.Module, inputs: torch.Tensor, *, lipschitz: float, rounding: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""The logits of ``model`` at ``inputs`` and the constants :math:`\alpha(x)`, :math:`\beta` of the module text.

    For every float ``y`` and every float evaluation :math:`\hat f`,
    :math:`\lVert\hat f(y)-\hat f(x)\rVert_2\le\alpha(x)+\beta\lVert y-x\rVert_2` under the assumption (R) of the
    module text, with :math:`\beta` counting :math:`L` = ``lipschitz`` for the exact function (the stages' own
    bounds only for the growth of the rounding).

    Parameters
    ----------
    model : nn.Module
        The classifier; ``model(inputs)`` gives the logits.
    inputs : torch.Tensor
        Shape ``(batch, ...)``, floating point.
    lipschitz : float
        The Lipschitz bound :math:`L` of the exact function.
    rounding : float, optional
        :math:`\rho_s` for every stage (0: exact arithmetic); default :math:`\gamma_{n_s+4}` per stage, and
        :math:`1024u` for an opaque stage.

    Returns
    -------
    tuple
        ``(logits, alpha, beta)``: the logits ``model(inputs)``, :math:`\alpha` of shape ``(batch,)`` (float64)
        and :math:`\beta` (a float, ``inf`` if the bound overflows).

    Raises
    ------
    TypeError
        If the inputs' dtype is not the model's and the model fails on them (the message names both dtypes).
    """
    stages = _stages(model)
    with torch.no_grad():
        logits = call_model(model, inputs)
        if stages is None:
            pieces = _opaque(model, inputs, logits, lipschitz)
        else:
            pieces, z = [], inputs
            for stage in stages:
                out = stage(z)
                pieces += _ANALYSES[type(stage).forward](stage, z, out)
                z = out
    alpha = torch.zeros(len(inputs), dtype=torch.float64, device=inputs.device)
    growth, nominal = 1.0, 1.0
    for piece in pieces:
        if rounding is not None:
            rho = rounding
        elif piece.length is None:
            rho = 1024 * torch.finfo(inputs.dtype).eps / 2
        else:
            rho = _gamma(piece.length + 4, _unit_roundoff(inputs.dtype, inputs.device, piece.kind))
        gain = piece.lipschitz + rho * piece.sensitivity
        alpha = alpha * gain + 2 * rho * piece.work
        growth, nominal = growth * gain, nominal * piece.lipschitz
    beta = lipschitz + (growth - nominal)
    return logits, alpha, beta if math.isfinite(beta) else math.inf
