r"""Lipschitz-constrained networks and adversarial robustness (chapter 6).

- :mod:`companion.lipschitz.operator_norms`: spectral norms of dense maps and convolutions (exact, certified
  upper bounds, power-iteration estimates);
- :mod:`companion.lipschitz.layers`: :class:`NonExpansiveLayer` and :class:`NonExpansiveConvLayer`, one explicit
  Euler step of the gradient flow :math:`\dot x = -A^\top\sigma(Ax+b)` with :math:`h\le 2/\lVert A\rVert_2^2`,
  :class:`NormalizedLinear`, :class:`Standardize`, :func:`network_lipschitz_bound` and
  :func:`lipschitz_classifier`;
- :mod:`companion.lipschitz.switching`: :class:`SwitchingLayer`, the contractive / expansive pair with its
  Lipschitz bound;
- :mod:`companion.lipschitz.attacks`: L2 attacks (PGD, APGD);
- :mod:`companion.lipschitz.robustness`: certified radii from the margin and the Lipschitz bound, certified and
  robust accuracy, the hinge loss, robustness curves and reports;
- :mod:`companion.lipschitz.rounding`: the bound on a forward pass's floating-point rounding, from the values each
  stage computes, that keeps certified radii sound for every parameter value.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023). F. Sherry et al., *Designing stable neural networks
using convex analysis and ODEs*, Physica D 463 (2024).
"""

from .attacks import ATTACK_LOSSES, apgd_checkpoints, apgd_l2, pgd_l2
from .layers import (
    NonExpansiveConvLayer,
    NonExpansiveLayer,
    NormalizedLinear,
    Standardize,
    lipschitz_classifier,
    network_lipschitz_bound,
)
from .operator_norms import (
    PADDING_MODES,
    conv2d_same,
    conv2d_same_adjoint,
    conv_operator_norm,
    conv_power_iteration,
    dense_operator_norm,
    periodic_conv_operator_norm,
    power_iteration,
    reshaped_kernel_norm,
)
from .robustness import (
    ATTACKS,
    RobustnessReport,
    certificate_check,
    certified_accuracy,
    certified_radius,
    hinge_loss,
    network_certified_radius,
    robust_accuracy,
    robustness_curve,
    robustness_report,
    rounding_allowance,
)
from .switching import (
    SKEW_LIMIT,
    SwitchingLayer,
    admissible_expansive_step,
    contractive_factor,
    switching_lipschitz_bound,
)

__all__ = [
    # operator norms
    "PADDING_MODES", "dense_operator_norm", "periodic_conv_operator_norm", "conv_operator_norm",
    "reshaped_kernel_norm", "power_iteration", "conv2d_same", "conv2d_same_adjoint", "conv_power_iteration",
    # layers
    "NonExpansiveLayer", "NonExpansiveConvLayer", "NormalizedLinear", "Standardize", "network_lipschitz_bound",
    "lipschitz_classifier", "SwitchingLayer", "SKEW_LIMIT", "contractive_factor", "switching_lipschitz_bound",
    "admissible_expansive_step",
    # attacks and certificates
    "pgd_l2", "apgd_l2", "apgd_checkpoints", "ATTACK_LOSSES", "ATTACKS", "certified_radius", "network_certified_radius",
    "certified_accuracy",
    "rounding_allowance", "hinge_loss", "robust_accuracy", "robustness_curve", "RobustnessReport",
    "robustness_report", "certificate_check",
]
