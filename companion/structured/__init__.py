r"""Networks with prescribed properties: symplecticity, volume, mass, and mass with non-negativity (chapter 5).

Each layer follows the design recipe: a family of vector fields whose exact flows have the property, and an
integrator that keeps it at the discrete level. The property then holds for **every** value of the parameters,
by construction.

- :mod:`companion.structured.symplectic`: :class:`SymplecticLayer`, a separable neural Hamiltonian stepped by
  symplectic Euler or Störmer--Verlet;
- :mod:`companion.structured.volume`: :class:`VolumePreservingLayer` (any dimension >= 2), composed shears
  :math:`x_i \leftarrow x_i + h\,g_i(x_{-i})`, and the mesh and enclosed-volume helpers of the chapter;
- :mod:`companion.structured.mass`: :class:`MassPreservingLayer`, the skew field
  :math:`(A_\theta(x)-A_\theta(x)^\top)\mathbf 1` stepped by any Runge--Kutta method, and the SIR network;
- :mod:`companion.structured.positive`: :class:`PositiveMassPreservingLayer`, a compartmental field with rates
  :math:`r_{ij}(x)\ge0` stepped by the exponential exit step (mass and non-negativity);
- :mod:`companion.structured.figures`: the chapter's shear schematic (imported on first use: it needs
  matplotlib).

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural
networks*, SIAM J. Sci. Comput. 45(6) (2023), A3071--A3094.
"""

import importlib

from . import mass, positive, symplectic, volume
from .mass import MassLift, MassPreservingLayer, MassProjection, mass_preserving_network
from .positive import (
    EXPONENTIAL_EXIT,
    CompartmentalField,
    PositiveMassPreservingLayer,
    exponential_exit_step,
    positive_mass_network,
)
from .symplectic import SymplecticLayer, symplectic_network
from .volume import VolumePreservingLayer, enclosed_volume, sphere_mesh

#: Every public name of the subpackage's modules (each module's own ``__all__``), and the modules.
__all__ = [
    *symplectic.__all__,
    *volume.__all__,
    *mass.__all__,
    *positive.__all__,
    "mass",
    "positive",
    "symplectic",
    "volume",
]


def __getattr__(name: str):
    if name == "figures":
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
