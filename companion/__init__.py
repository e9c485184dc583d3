"""companion: neural networks as discretised dynamical systems.

The whole public surface is re-exported here; the submodules hold the details:
:mod:`~companion.integrators`, :mod:`~companion.fields`, :mod:`~companion.layers`,
:mod:`~companion.structured`, :mod:`~companion.diagnostics`, :mod:`~companion.data`,
:mod:`~companion.training`, :mod:`~companion.plotting`.
"""

from .data import swiss_roll, train_test_split
from .diagnostics import (
    empirical_order,
    jacobian_determinant_error,
    jacobian_spectral_norm,
    jacobians,
    linear_invariant_drift,
    lipschitz_lower_bound,
    norm_drift,
    symmetry_error,
    symplecticity_error,
)
from .fields import GradientField, MassPreservingField, MLPField, SpherePreservingField
from .integrators import (
    EULER,
    HEUN,
    KUTTA3,
    MIDPOINT,
    RK4,
    ButcherTableau,
    cayley_step,
    exp_step,
    integrate,
    require_method,
    rk_step,
    stormer_verlet_step,
    symplectic_euler_step,
)
from .layers import FlowLayer, FlowNetwork, mlp, resnet
from .structured import SymplecticLayer
# -- exports: presnov chapter --
# -- exports: pde chapter --
# -- exports: properties chapter --
# -- exports: lipschitz chapter --
from .training import History, accuracy, default_device, fit, seed_everything

__version__ = "0.1.0"

__all__ = [
    # integrators
    "ButcherTableau", "EULER", "MIDPOINT", "HEUN", "KUTTA3", "RK4", "rk_step", "integrate",
    "symplectic_euler_step", "stormer_verlet_step", "cayley_step", "exp_step", "require_method",
    # fields and layers
    "MLPField", "GradientField", "SpherePreservingField", "MassPreservingField",
    "FlowLayer", "FlowNetwork", "resnet", "mlp",
    # property layers
    "SymplecticLayer",
    # -- __all__: presnov chapter --
    # -- __all__: pde chapter --
    # -- __all__: properties chapter --
    # -- __all__: lipschitz chapter --
    # diagnostics
    "empirical_order", "jacobians", "jacobian_determinant_error", "symplecticity_error", "symmetry_error",
    "linear_invariant_drift", "norm_drift", "lipschitz_lower_bound", "jacobian_spectral_norm",
    # data and training
    "swiss_roll", "train_test_split", "fit", "History", "seed_everything", "accuracy", "default_device",
]
