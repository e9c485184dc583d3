r"""The Presnov decomposition and universal approximation with gradient flows (chapters 2 and 3).

Every smooth vector field is the sum of a gradient field and a sphere-preserving field,
:math:`F(x) = \nabla V(x) + S(x)x` with :math:`S(x)^\top = -S(x)` and :math:`V(0) = 0` (Presnov, 2002).

- :mod:`companion.presnov.decomposition`: the potential :math:`V` by Gauss--Legendre quadrature along rays,
  :func:`decompose` (chapter 2), the skew matrix :math:`S(x)`, and splitting flows of the two parts;
- :mod:`companion.presnov.approximation`: compositions of gradient and sphere-preserving flows as networks,
  error against depth, and the splitting argument of the universal-approximation proof made numerical
  (chapter 3).

The layers themselves (:class:`~companion.layers.GradientLayer`, :class:`~companion.layers.SpherePreservingLayer`) are in
:mod:`companion.layers`, beside the other flow layers.
"""

from . import approximation, decomposition
from .approximation import DepthStudy, depth_study, gradient_network, gradient_norms_by_layer, presnov_sizes
from .decomposition import (
    SPLITTING_SCHEMES,
    decompose,
    gauss_legendre,
    potential,
    presnov_parts,
    skew_matrix,
    splitting_errors,
    splitting_flow,
)

#: Every public name of the subpackage's modules (each module's own ``__all__``), and the modules.
__all__ = [*decomposition.__all__, *approximation.__all__, "approximation", "decomposition"]
