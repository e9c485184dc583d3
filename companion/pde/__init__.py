r"""Learning PDE dynamics from pixel data with the method of lines (chapter 4).

A finite-difference stencil is a convolution, so the semi-discrete right-hand side of a PDE is a small CNN and
an explicit Euler step of it is a residual layer (Celledoni, Jackaman, Murari and Owren, 2025).

- :mod:`companion.pde.stencils`: finite-difference stencils as convolution kernels, the semi-discrete
  right-hand sides and the stability check of a time step;
- :mod:`companion.pde.networks`: :class:`ConvRHS`, the exact CNN of a finite-difference step
  (:func:`exact_cnn`), :class:`MethodOfLinesNetwork`, rollouts and their metrics;
- :mod:`companion.pde.data`: initial conditions, the pseudo-spectral truth, trajectories, the error splitting;
- :mod:`companion.pde.families`: other families of initial conditions (bumps, random fields, sums) and the
  broadband training data of the headline networks;
- :mod:`companion.pde.patches`: sub-step targets by interpolation in time and local patches of trajectories;
- :mod:`companion.pde.fitting`: :func:`train_network`, Levenberg--Marquardt on patches with noise injection,
  which learns from PyTorch's random initialisation;
- :mod:`companion.pde.training`: the paper's architectures, the unrolled-loss curriculum, saving and loading,
  and the networks shipped in ``companion/pde/weights`` (:func:`pretrained_network`);
- :mod:`companion.pde.plots`: the chapter's schematics and prediction figures (imported on first use: it needs
  matplotlib).

The names of the first seven modules are also attributes of ``companion.pde`` (``companion.pde.rollout``).
"""

import importlib

from . import data, families, fitting, networks, patches, stencils, training
from .data import (
    default_time_step,
    error_splitting,
    generate_trajectories,
    grid_points,
    initial_conditions,
    semidiscrete_flow,
    spectral_solution,
    stencil_errors,
    trajectories_from,
)
from .families import (
    BROADBAND_BANDS,
    GENERALISATION_FAMILIES,
    broadband,
    generalisation_families,
    localised_bumps,
    random_fields,
    sums_and_rescalings,
)
from .fitting import SCALING_FLOOR, TrainingReport, amplification, levenberg_marquardt, train_network
from .networks import (
    ConvRHS,
    MethodOfLinesNetwork,
    exact_cnn,
    impulse_response,
    method_of_lines,
    rollout,
    rollout_metrics,
    unrolled_loss,
)
from .patches import (
    COVERAGE_THRESHOLD,
    INTERPOLATION_POINTS,
    patch_field,
    sample_patches,
    spectral_coverage,
    substep_targets,
)
from .stencils import (
    BOUNDARIES,
    EQUATIONS,
    apply_stencil,
    check_grid,
    check_order,
    check_time_step,
    check_velocity,
    rhs,
    stencil,
)
from .training import (
    ARCHITECTURES,
    AUTHORS_RELATIVE_ERRORS,
    PRETRAINED,
    load_network,
    make_network,
    pretrained_network,
    save_network,
    train_curriculum,
)

#: Every public name of the subpackage's modules (each module's own ``__all__``), and the modules.
__all__ = [
    *stencils.__all__,
    *networks.__all__,
    *data.__all__,
    *families.__all__,
    *patches.__all__,
    *fitting.__all__,
    *training.__all__,
    "data",
    "families",
    "fitting",
    "networks",
    "patches",
    "stencils",
    "training",
]


def __getattr__(name: str):
    if name == "plots":
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
