r"""Volume-preserving layers in any dimension: compositions of shears over a partition of the coordinates.

Split the state :math:`x\in\mathbb R^d` into blocks :math:`x = (x_1, \dots, x_m)`, :math:`m \ge 2`. A field whose
:math:`i`-th block does not depend on :math:`x_i`,

.. math:: \dot x_i = g_i(x_{-i}), \qquad x_{-i} = (x_1,\dots,x_{i-1},x_{i+1},\dots,x_m),

is divergence-free, and so is each of its parts :math:`(0,\dots,g_i(x_{-i}),\dots,0)`. The exact flow of
one part is the shear :math:`x_i \leftarrow x_i + h\,g_i(x_{-i})`; composing the shears of all blocks (a
splitting method) gives a layer whose Jacobian is a product of block-unit-triangular matrices, so
:math:`\det J = 1` exactly, for every parameter value and step, in even **and odd** dimensions.

The public names are re-exported by :mod:`companion.structured` (and :class:`VolumePreservingLayer` by
``companion``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_choice, check_positive_int, check_tensor
from ..fields import ACTIVATIONS, _ActivationSetting
from ..integrators import SYMPLECTIC_EULER, GeometricMethod, require_method
from ..layers import StepSize

__all__ = ["VolumePreservingLayer", "sphere_mesh", "enclosed_volume"]


class _BlockUpdate(_ActivationSetting, nn.Module):
    """:math:`g_i(x_{-i}) = \\sigma(Ax_{-i}+a)` (``hidden=None``) or :math:`C\\sigma(Ax_{-i}+a)+c`; the activation is
    a fixed setting (shown in ``repr``, saved and restored with the state dict)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None, activation: str) -> None:
        super().__init__()
        self._configure(activation=activation)
        self.inner = nn.Linear(in_dim, out_dim if hidden is None else hidden)
        self.outer = None if hidden is None else nn.Linear(hidden, out_dim)

    def forward(self, others: torch.Tensor) -> torch.Tensor:
        value = self.sigma(self.inner(others))
        return value if self.outer is None else self.outer(value)


def _check_blocks(blocks: Sequence[int] | None, dim: int) -> tuple[int, ...]:
    if blocks is None:
        return (dim // 2, dim - dim // 2)
    if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__iter__"):
        raise TypeError(f"blocks must be a sequence of block sizes such as (1, 1, 1), got {blocks!r}.")
    sizes = tuple(check_positive_int(size, "each block size") for size in blocks)
    if len(sizes) < 2 or sum(sizes) != dim:
        raise ValueError(
            f"blocks must split dim={dim} into at least two blocks of sizes summing to {dim}, got {sizes}; "
            f"e.g. blocks={(1,) * dim} (one shear per coordinate)."
        )
    return sizes


class VolumePreservingLayer(StepSize, nn.Module):
    r"""A volume-preserving layer: one shear per block of coordinates, :math:`x_i \leftarrow x_i + h\,g_i(x_{-i})`.

    The state is split into contiguous blocks of sizes ``blocks`` (default: two halves, :math:`(x, v)`,
    the first of size :math:`\lfloor d/2\rfloor`). Block :math:`i` is moved by a function of all the *other*
    coordinates,

    .. math::

       g_i(x_{-i}) = \Sigma(A_ix_{-i} + a_i) \quad\text{or, with a hidden layer,}\\
       g_i(x_{-i}) = C_i\,\Sigma(A_ix_{-i} + a_i) + c_i,

    the parts of the divergence-free field :math:`\dot x_i = g_i(x_{-i})`. With two blocks and no
    ``hidden`` this is the layer of Celledoni et al. (2023),

    .. math:: \hat x = x + h\Sigma(Av+a), \qquad \hat v = v + h\Sigma(B\hat x+b).

    * ``method="symplectic_euler"`` (default): the shears of blocks :math:`1, \dots, m` in turn, each with
      step :math:`h` (the Lie--Trotter splitting, first order).
    * ``method="stormer_verlet"``: the symmetric (Strang) composition, half steps of blocks
      :math:`1, \dots, m-1`, a full step of block :math:`m`, half steps back (second order).

    **Guarantee.** A shear :math:`x_i \leftarrow x_i + h\,g_i(x_{-i})` has the Jacobian
    :math:`I + hE_i\,\partial g_i`, where :math:`\partial g_i` vanishes on the columns of block :math:`i`:
    after permuting block :math:`i` to the end it is block-unit-triangular, so its determinant is 1. The
    layer is a product of such matrices, hence :math:`\det J = 1` for every parameter value, step size,
    dimension (odd included) and partition; it is inverted exactly by undoing the shears in reverse order
    (:meth:`inverse`). In odd dimensions there is no symplectic structure, and volume preservation is
    the property left to keep.

    Parameters
    ----------
    dim : int
        State dimension, >= 2 (odd or even).
    blocks : sequence of int, optional
        Sizes of the contiguous blocks, at least two, summing to ``dim``; default
        ``(dim // 2, dim - dim // 2)``. ``(1,) * dim`` moves one coordinate at a time.
    hidden : int, optional
        Hidden width of each :math:`g_i`; ``None`` (default) uses the single layer :math:`\Sigma(A_ix_{-i}+a_i)`.
    h : float
        Step size, > 0.
    activation : {"tanh", "sigmoid", "relu"}
        The component-wise :math:`\Sigma`.
    method : SYMPLECTIC_EULER, STORMER_VERLET or their names
        The shear composition. A method that does not keep volume (e.g. ``"rk4"``) is refused.
    learn_step : bool
        If true, ``h`` is a parameter kept positive by ``abs``.

    Raises
    ------
    TypeError, ValueError
        If ``dim < 2``, ``blocks`` is not a partition of ``dim`` into at least two blocks, ``hidden`` or
        ``h`` is not positive, the activation is unknown or ``method`` does not keep volume; in ``forward``,
        if the input is not a floating ``(batch, dim)`` tensor.

    References
    ----------
    E. Celledoni et al., *Dynamical systems' based neural networks*, SIAM J. Sci. Comput. (2023);
    E. Hairer, C. Lubich, G. Wanner, *Geometric Numerical Integration*, Springer (2006), §VI.9.
    """

    def __init__(
        self,
        dim: int,
        *,
        blocks: Sequence[int] | None = None,
        hidden: int | None = None,
        h: float = 0.1,
        activation: str = "tanh",
        method: GeometricMethod | str = "symplectic_euler",
        learn_step: bool = False,
    ) -> None:
        super().__init__()
        self.dim = check_positive_int(dim, "dim")
        if dim < 2:
            raise ValueError(f"VolumePreservingLayer needs dim >= 2 (two blocks to shear), got dim={dim}.")
        self.blocks = _check_blocks(blocks, dim)
        self.hidden = None if hidden is None else check_positive_int(hidden, "hidden")
        self.method = self._check_method(method)
        check_choice(activation, "activation", ACTIVATIONS)
        ends = torch.tensor(self.blocks).cumsum(0).tolist()
        self._bounds = tuple(zip([0, *ends[:-1]], ends))
        self.updates = nn.ModuleList(_BlockUpdate(dim - size, size, self.hidden, activation) for size in self.blocks)
        self._init_step(h, learn_step)

    def _check_method(self, method: object) -> GeometricMethod:
        try:
            return require_method("volume", method)
        except ValueError as error:  # the names of the allowed methods speak of symplecticity: say what they mean
            raise ValueError(
                f"{error} Here these names mean compositions of shears, one block after another or symmetric "
                "(Strang): they keep volume in every dimension, odd included, where no symplectic structure exists."
            ) from None

    def _order(self) -> list[tuple[int, float]]:
        """The shears as (block, fraction of h), in the order applied by :meth:`forward`."""
        last = len(self.blocks) - 1
        if self.method.key == SYMPLECTIC_EULER.key:  # by key: a copy of the method is the same method
            return [(i, 1.0) for i in range(last + 1)]
        return [(i, 0.5) for i in range(last)] + [(last, 1.0)] + [(i, 0.5) for i in reversed(range(last))]

    def _shear(self, state: torch.Tensor, block: int, step) -> torch.Tensor:
        start, stop = self._bounds[block]
        before, moved, after = state[..., :start], state[..., start:stop], state[..., stop:]
        update = self.updates[block](torch.cat([before, after], dim=-1))
        return torch.cat([before, moved + step * update, after], dim=-1)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        check_tensor(state, "x", last_dim=self.dim)
        h = self.h
        for block, fraction in self._order():
            state = self._shear(state, block, fraction * h)
        return state

    def inverse(self, state: torch.Tensor) -> torch.Tensor:
        r"""The exact inverse map: the shears of :meth:`forward` undone in reverse order.

        Parameters
        ----------
        state : torch.Tensor
            Shape ``(batch, dim)``, an output of :meth:`forward`.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, dim)``; ``layer.inverse(layer(x))`` equals ``x`` up to rounding.

        Raises
        ------
        TypeError, ValueError
            If ``state`` is not a floating ``(batch, dim)`` tensor.
        """
        check_tensor(state, "x", last_dim=self.dim)
        h = self.h
        for block, fraction in reversed(self._order()):
            state = self._shear(state, block, -fraction * h)
        return state

    def extra_repr(self) -> str:
        return ", ".join(
            filter(None, [f"dim={self.dim}, blocks={self.blocks}, hidden={self.hidden}", super().extra_repr()])
        )


def sphere_mesh(
    *,
    radius: float = 1.0,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    rings: int = 24,
    segments: int = 48,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A closed, outward-oriented triangulation of a sphere in :math:`\mathbb R^3` (latitude--longitude grid).

    Push the vertices through a map and measure :func:`enclosed_volume` of the image: the 3-D analogue of
    the shoelace area of a mapped polygon.

    Parameters
    ----------
    radius : float
        Radius, > 0.
    center : sequence of three floats
        Centre.
    rings, segments : int
        Latitude bands (>= 2) and longitude segments (>= 3).
    dtype : torch.dtype
        Dtype of the vertices.

    Returns
    -------
    tuple of torch.Tensor
        ``(vertices, faces)``: shape ``(2 + (rings - 1) * segments, 3)`` and integer ``(2 * (rings - 1) * segments, 3)``.

    Raises
    ------
    TypeError, ValueError
        On a non-positive radius, a centre that is not three numbers, too few rings or segments.
    """
    from .._checks import check_positive

    radius = check_positive(radius, "radius")
    check_positive_int(rings, "rings")
    check_positive_int(segments, "segments")
    if rings < 2 or segments < 3:
        raise ValueError(f"a closed sphere mesh needs rings >= 2 and segments >= 3, got {rings} and {segments}.")
    center = torch.as_tensor(center, dtype=dtype)
    if center.shape != (3,):
        raise ValueError(f"center must be three numbers, got {tuple(center.shape)} of them.")
    polar = torch.linspace(0, torch.pi, rings + 1, dtype=torch.float64)[1:-1]
    azimuth = torch.linspace(0, 2 * torch.pi, segments + 1, dtype=torch.float64)[:-1]
    theta, phi = torch.meshgrid(polar, azimuth, indexing="ij")
    ring_points = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], -1).reshape(-1, 3)
    poles = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    vertices = torch.cat([poles[:1], ring_points, poles[1:]])
    grid = 1 + torch.arange((rings - 1) * segments).reshape(rings - 1, segments)
    nxt = grid.roll(-1, dims=1)
    top = torch.stack([torch.zeros(segments, dtype=torch.long), grid[0], nxt[0]], -1)
    bottom = torch.stack([grid[-1], torch.full((segments,), len(vertices) - 1), nxt[-1]], -1)
    upper = torch.stack([grid[:-1], grid[1:], nxt[1:]], -1).reshape(-1, 3)
    lower = torch.stack([grid[:-1], nxt[1:], nxt[:-1]], -1).reshape(-1, 3)
    faces = torch.cat([top, upper, lower, bottom])
    return (radius * vertices).to(dtype) + center, faces


def enclosed_volume(vertices: torch.Tensor, faces: torch.Tensor) -> float:
    r"""Volume enclosed by a closed, consistently oriented triangulated surface: :math:`\tfrac16\sum_f a_f\cdot(b_f\times c_f)`.

    By the divergence theorem this is exact for the polyhedron; for the image of a sphere mesh under a smooth
    map it converges to the volume of the image as the mesh is refined.

    Parameters
    ----------
    vertices : torch.Tensor
        Shape ``(n, 3)``.
    faces : torch.Tensor
        Integer tensor of shape ``(m, 3)``, indices into ``vertices``, oriented outwards.

    Returns
    -------
    float
        The signed volume (positive for outward orientation).

    Raises
    ------
    TypeError, ValueError
        If the shapes or dtypes are wrong, or an index is out of range.
    """
    check_tensor(vertices, "vertices", ndim=2, last_dim=3)
    check_tensor(faces, "faces", ndim=2, last_dim=3, floating=False)
    if faces.is_floating_point() or faces.dtype == torch.bool:
        raise TypeError(f"faces must hold integer indices, got dtype {faces.dtype}.")
    if len(faces) and (int(faces.min()) < 0 or int(faces.max()) >= len(vertices)):
        raise ValueError(
            f"faces index vertices 0..{len(vertices) - 1}, got indices {int(faces.min())}..{int(faces.max())}."
        )
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    return float((a * torch.linalg.cross(b, c)).sum().detach() / 6)
