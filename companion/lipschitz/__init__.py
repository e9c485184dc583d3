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
  robust accuracy, the hinge and offset cross-entropy losses, robustness curves and reports;
- :mod:`companion.lipschitz.rounding`: the bound on a forward pass's floating-point rounding, from the values each
  stage computes, that keeps certified radii sound for every parameter value.
- :mod:`companion.lipschitz.inference`: the weight-derived quantities (norms, orthogonal factors) computed once in
  eval mode, so that inference and attacks cost what plain layers cost.
- :mod:`companion.lipschitz.plain`: :func:`export`, a trained network as plain layers computing the same function,
  whose certificate still holds.
- :mod:`companion.lipschitz.cifar`: CIFAR-10 at the paper's scale: the dataset's files read locally, the
  unconstrained, non-expansive and switching backbones (:func:`cifar_resnet`), the augmentation, the robustness
  AUC and the published table.

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023). F. Sherry et al., *Designing stable neural networks
using convex analysis and ODEs*, Physica D 463 (2024).
"""

from . import attacks, cifar, inference, layers, operator_norms, plain, robustness, rounding, switching
from .attacks import ATTACK_LOSSES, AdversarialLoss, adversarial_loss, apgd_checkpoints, apgd_l2, pgd_l2
from .cifar import (
    CIFAR10_FOLDER,
    CIFAR10_MEAN,
    CIFAR10_REGIMES,
    CIFAR10_STD,
    PAPER_EPSILONS,
    PUBLISHED_CIFAR10,
    CifarResNet,
    NormalizedConv2d,
    PublishedRow,
    ResidualConvLayer,
    SwitchingConvLayer,
    cifar_resnet,
    load_cifar10,
    random_crop_flip,
    robustness_auc,
    write_fake_cifar10,
)
from .inference import DerivedCache, inputs_only
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
from .plain import PlainGradientStep, export
from .robustness import (
    ATTACKS,
    RobustnessReport,
    certificate_check,
    certified_accuracy,
    certified_radius,
    hinge_loss,
    network_certified_radius,
    offset_cross_entropy,
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

#: Every public name of the subpackage's modules (each module's own ``__all__``), and the modules.
__all__ = [
    *operator_norms.__all__,
    *layers.__all__,
    *switching.__all__,
    *attacks.__all__,
    *robustness.__all__,
    *cifar.__all__,
    *inference.__all__,
    *plain.__all__,
    "attacks",
    "cifar",
    "inference",
    "layers",
    "operator_norms",
    "plain",
    "robustness",
    "rounding",
    "switching",
]
