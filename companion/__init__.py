"""companion: neural networks as discretised dynamical systems.

The layers, integrators, checks and training helpers the chapters use are re-exported here, so one import
reaches everything. The package has one folder per topic of the book, the core flat beside them:

- core (chapter 1 and what every chapter uses): :mod:`~companion.integrators` (Runge--Kutta tableaus, the
  method registry, the property guard), :mod:`~companion.geometric` (symplectic and norm-exact steps),
  :mod:`~companion.fields`, :mod:`~companion.layers`, :mod:`~companion.diagnostics`, :mod:`~companion.data`,
  :mod:`~companion.training`, :mod:`~companion.plotting`;
- :mod:`companion.presnov`: the Presnov decomposition and universal approximation (chapters 2-3);
- :mod:`companion.pde`: learning PDE dynamics from pixel data (chapter 4);
- :mod:`companion.structured`: volume-, mass- and symplecticity-preserving networks (chapter 5);
- :mod:`companion.lipschitz`: Lipschitz-constrained networks and adversarial robustness (chapter 6).

:mod:`companion.pde` and :mod:`companion.plotting` are imported on first use (``companion.pde`` works at once),
so that ``import companion`` stays light.
"""

import importlib

from . import presnov  # companion.presnov.decompose
from .data import digits, swiss_roll, train_test_split
from .diagnostics import (
    empirical_order,
    global_errors,
    jacobian_determinant_error,
    jacobian_spectral_norm,
    jacobians,
    linear_invariant_drift,
    lipschitz_lower_bound,
    norm_drift,
    symmetry_error,
    symplecticity_error,
)
from .fields import GradientField, LowRankSpherePreservingField, MassPreservingField, MLPField, SpherePreservingField
from .geometric import (
    cayley_step,
    exp_step,
    integrate_separable,
    low_rank_cayley_step,
    low_rank_exp_step,
    rotation_step,
    stormer_verlet_step,
    symplectic_euler_step,
)
from .integrators import (
    CAYLEY,
    EULER,
    EXP,
    EXPONENTIAL_EXIT,
    HEUN,
    KUTTA3,
    METHODS,
    MIDPOINT,
    RK4,
    RK38,
    ROTATION,
    STORMER_VERLET,
    SYMPLECTIC_EULER,
    ButcherTableau,
    GeometricMethod,
    get_method,
    integrate,
    require_method,
    rk_step,
)
from .layers import (
    FlowLayer,
    FlowNetwork,
    GradientLayer,
    SpherePreservingLayer,
    gradient_sphere_network,
    mlp,
    resnet,
    xavier_init_,
)
from .lipschitz import (
    NonExpansiveConvLayer,
    NonExpansiveLayer,
    NormalizedLinear,
    Standardize,
    SwitchingLayer,
    apgd_l2,
    certificate_check,
    certified_radius,
    conv_operator_norm,
    dense_operator_norm,
    hinge_loss,
    lipschitz_classifier,
    network_certified_radius,
    network_lipschitz_bound,
    offset_cross_entropy,
    pgd_l2,
    power_iteration,
    robustness_curve,
    robustness_report,
)
from .structured import (
    MassPreservingLayer,
    PositiveMassPreservingLayer,
    SymplecticLayer,
    VolumePreservingLayer,
    symplectic_network,
)
from .training import History, accuracy, default_device, fit, seed_everything

__version__ = "0.3.0"

# One line per topic, so that the list reads as a map of the public surface.
# fmt: off
__all__ = [
    # integrators
    "ButcherTableau", "EULER", "MIDPOINT", "HEUN", "KUTTA3", "RK4", "RK38", "rk_step", "integrate",
    "integrate_separable", "GeometricMethod", "SYMPLECTIC_EULER", "STORMER_VERLET", "CAYLEY", "EXP", "ROTATION",
    "EXPONENTIAL_EXIT", "METHODS", "get_method", "symplectic_euler_step", "stormer_verlet_step", "cayley_step",
    "exp_step", "rotation_step", "require_method", "low_rank_cayley_step", "low_rank_exp_step",
    # fields and layers
    "MLPField", "GradientField", "SpherePreservingField", "LowRankSpherePreservingField", "MassPreservingField",
    "FlowLayer", "FlowNetwork", "resnet", "mlp", "xavier_init_",
    # gradient and sphere-preserving flows (the Presnov decomposition)
    "GradientLayer", "SpherePreservingLayer", "gradient_sphere_network", "presnov",
    # networks with prescribed properties
    "SymplecticLayer", "symplectic_network", "VolumePreservingLayer", "MassPreservingLayer",
    "PositiveMassPreservingLayer",
    # Lipschitz networks and robustness
    "NonExpansiveLayer", "NonExpansiveConvLayer", "SwitchingLayer", "NormalizedLinear", "Standardize",
    "dense_operator_norm", "conv_operator_norm", "power_iteration", "network_lipschitz_bound", "lipschitz_classifier",
    "certified_radius", "network_certified_radius", "certificate_check", "hinge_loss", "pgd_l2", "apgd_l2",
    "robustness_curve", "robustness_report", "digits", "offset_cross_entropy",
    # diagnostics
    "empirical_order", "global_errors", "jacobians", "jacobian_determinant_error", "symplecticity_error",
    "symmetry_error", "linear_invariant_drift", "norm_drift", "lipschitz_lower_bound", "jacobian_spectral_norm",
    # data and training
    "swiss_roll", "train_test_split", "fit", "History", "seed_everything", "accuracy", "default_device",
]
# fmt: on

#: Submodules imported on first use, so that ``import companion`` stays light: ``companion.pde`` works at once.
_LAZY_SUBMODULES = ("pde", "plotting")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'companion' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
