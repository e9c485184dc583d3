r"""Families of initial conditions for :mod:`companion.pde`: what a network is trained on and what it is tested on.

A method-of-lines network learns a field :math:`F_\theta` from the frequencies its data show; a frequency the
data never excite is left to chance (or to the noise injection of :func:`~companion.pde.fitting.train_network`).
The sin-cos modes of :func:`~companion.pde.data.initial_conditions` with :math:`k\le 3` excite few of the
frequencies a 64x64 grid resolves, so this module adds other families:

- :func:`localised_bumps`: sums of periodic Gaussians of random centre, width and amplitude (broad spectra);
- :func:`random_fields`: random Fourier coefficients with amplitude :math:`\propto(1+|k|)^{-p}`, normalised;
- :func:`sums_and_rescalings`: random signed sums of images of a given set, rescaled;
- :func:`broadband`: the training data of the shipped headline networks, a mixture of all of these over several
  wavenumber bands, each initial condition mapped into a random sub-interval of a value range.

Every family takes an explicit ``seed`` (its own generator: the global one is left untouched), ``size`` and
``dtype``, and returns ``(count, size, size)``. Trajectories from any of them: :func:`~companion.pde.data.trajectories_from`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import check_positive_int, check_tensor
from .data import initial_conditions

__all__ = [
    "localised_bumps",
    "random_fields",
    "sums_and_rescalings",
    "broadband",
    "BROADBAND_BANDS",
    "GENERALISATION_FAMILIES",
    "generalisation_families",
]

#: The wavenumber bands of the sin-cos modes of :func:`broadband`. Higher wavenumbers are left to its random
#: fields and bumps (at lower amplitude): under heat with the chapter's step a mode with k = (17, 17) loses 74% per
#: step, so interpolated sub-step targets of such frames are poor, and the noise injection pins that range.
BROADBAND_BANDS = ((1, 3), (4, 8), (9, 16))


def _check_range(value: float | Sequence[float], name: str, *, low: float | None = None) -> tuple[float, float]:
    """A number ``a`` as ``(a, a)``, or a pair ``(a, b)`` with ``a <= b``, finite, each ``>= low`` if given."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a pair of numbers (low, high), got {value!r}.")
    if isinstance(value, (int, float)):
        pair = (float(value), float(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        raise TypeError(f"{name} must be a number or a pair of numbers (low, high), got {value!r}.")
    if not all(math.isfinite(v) for v in pair) or pair[0] > pair[1]:
        raise ValueError(f"{name} must be finite with low <= high, got {value!r}.")
    if low is not None and pair[0] < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}.")
    return pair


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    return seed


def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}.")
    return dtype


def _uniform(generator: torch.Generator, shape: tuple[int, ...], pair: tuple[float, float]) -> torch.Tensor:
    return pair[0] + (pair[1] - pair[0]) * torch.rand(shape, generator=generator, dtype=torch.float64)


def _rescale(u: torch.Tensor, amplitude: torch.Tensor) -> torch.Tensor:
    """Each image of ``u`` ``(N, d, d)`` scaled to max abs value ``amplitude`` ``(N,)``."""
    peak = u.flatten(1).abs().amax(1).clamp_min(1e-300)
    return u * (amplitude / peak)[:, None, None]


def localised_bumps(
    count: int,
    *,
    size: int = 64,
    bumps: int | Sequence[int] = (1, 4),
    width: float | Sequence[float] = (0.03, 0.15),
    amplitude: float | Sequence[float] = (-1.0, 1.0),
    background: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Sums of periodic Gaussians :math:`u_0 = b + \sum_i a_i\,g_{w_i}(x - c_{x,i})\,g_{w_i}(y - c_{y,i})`,
    :math:`g_w(s) = \sum_{m=-2}^{2} e^{-(s+m)^2/(2w^2)}` (periodic to rounding for :math:`w\le 1/4`).

    Parameters
    ----------
    count : int
        Number of initial conditions.
    size : int
        Grid size :math:`d`.
    bumps : int or pair of int
        Number of bumps per initial condition, or a range ``(low, high)`` drawn uniformly (inclusive).
    width : float or pair of float
        Standard deviation :math:`w` of each bump, in ``(0, 1/4]``; a pair is drawn log-uniformly.
    amplitude : float or pair of float
        Peak :math:`a_i` of each bump; a pair is drawn uniformly (negative values: dips).
    background : float
        The constant :math:`b`.
    seed : int
        Seeds the centres, widths, amplitudes and counts.
    dtype : torch.dtype
        Floating dtype of the result (computed in float64).

    Returns
    -------
    torch.Tensor
        ``(count, size, size)``.

    Raises
    ------
    TypeError, ValueError
        On a non-positive count, size or number of bumps, widths outside ``(0, 1/4]``, ranges with
        ``low > high``, a non-finite background, a seed that is not an int or a dtype that is not floating.
    """
    check_positive_int(count, "count")
    check_positive_int(size, "size")
    low, high = _check_range(bumps, "bumps", low=1)
    if low != int(low) or high != int(high):
        raise TypeError(f"bumps must be an int or a pair of ints, got {bumps!r}.")
    widths = _check_range(width, "width")
    if widths[0] <= 0 or widths[1] > 0.25:
        raise ValueError(f"width must lie in (0, 0.25] (periodic Gaussians), got {width!r}.")
    amplitudes = _check_range(amplitude, "amplitude")
    if isinstance(background, bool) or not isinstance(background, (int, float)) or not math.isfinite(background):
        raise ValueError(f"background must be a finite number, got {background!r}.")
    generator = torch.Generator().manual_seed(_check_seed(seed))
    dtype = _check_dtype(dtype)
    most = int(high)
    n = torch.randint(int(low), most + 1, (count,), generator=generator)
    centre = torch.rand(count, most, 2, generator=generator, dtype=torch.float64)
    w = torch.exp(_uniform(generator, (count, most), (math.log(widths[0]), math.log(widths[1]))))
    a = _uniform(generator, (count, most), amplitudes) * (torch.arange(most)[None] < n[:, None])
    s = torch.arange(size, dtype=torch.float64) / size
    images = torch.arange(-2, 3, dtype=torch.float64)

    def profile(c: torch.Tensor) -> torch.Tensor:  # (count, most) centres -> (count, most, size)
        distance = s[None, None, :, None] - c[..., None, None] + images
        return torch.exp(-(distance**2) / (2 * w[..., None, None] ** 2)).sum(-1)

    u = torch.einsum("nb,nbx,nby->nxy", a, profile(centre[..., 0]), profile(centre[..., 1]))
    return (u + background).to(dtype)


def random_fields(
    count: int,
    *,
    size: int = 64,
    decay: float = 2.0,
    k_min: int = 1,
    k_max: int | None = None,
    amplitude: float | Sequence[float] = 1.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Random smooth fields with a decaying spectrum: :math:`u_0 = \mathrm{Re}\sum_k c_k e^{2\pi i k\cdot x}`,
    :math:`c_k` complex Gaussian with standard deviation :math:`(1+|k|)^{-p}` for integer wavenumbers with
    ``k_min <= max(|k_1|, |k_2|) <= k_max`` (mean zero), each field then scaled to max abs value ``amplitude``.

    Parameters
    ----------
    count : int
        Number of initial conditions.
    size : int
        Grid size :math:`d`.
    decay : float
        The exponent :math:`p \ge 0` (0: white noise in the band; larger: smoother).
    k_min, k_max : int
        The wavenumber band (``k_max`` defaults to the Nyquist wavenumber ``size // 2``).
    amplitude : float or pair of float
        Max abs value of each field, or a range drawn uniformly per field (positive).
    seed : int
        Seeds the coefficients and amplitudes.
    dtype : torch.dtype
        Floating dtype of the result (computed in float64).

    Returns
    -------
    torch.Tensor
        ``(count, size, size)``.

    Raises
    ------
    TypeError, ValueError
        On a non-positive count, size, k_min, k_max or amplitude, a negative decay, ``k_min > k_max`` or
        ``k_max > size // 2``, a seed that is not an int or a dtype that is not floating.
    """
    check_positive_int(count, "count")
    check_positive_int(size, "size")
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < float("inf"):
        raise ValueError(f"decay must be a finite number >= 0, got {decay!r}.")
    check_positive_int(k_min, "k_min")
    k_max = size // 2 if k_max is None else check_positive_int(k_max, "k_max")
    if k_min > k_max or k_max > size // 2:
        raise ValueError(f"need k_min <= k_max <= size // 2 = {size // 2}, got k_min={k_min}, k_max={k_max}.")
    amplitudes = _check_range(amplitude, "amplitude")
    if amplitudes[0] <= 0:
        raise ValueError(f"amplitude must be > 0, got {amplitude!r}.")
    generator = torch.Generator().manual_seed(_check_seed(seed))
    dtype = _check_dtype(dtype)
    k = torch.fft.fftfreq(size, d=1.0 / size).to(torch.float64)
    k1, k2 = torch.meshgrid(k, k, indexing="ij")
    band = torch.maximum(k1.abs(), k2.abs())
    weight = (1 + torch.sqrt(k1**2 + k2**2)) ** (-float(decay)) * ((band >= k_min) & (band <= k_max))
    c = torch.randn(count, size, size, 2, generator=generator, dtype=torch.float64)
    u = torch.fft.ifft2(torch.complex(c[..., 0], c[..., 1]) * weight).real
    return _rescale(u, _uniform(generator, (count,), amplitudes)).to(dtype)


def sums_and_rescalings(
    images: torch.Tensor,
    count: int,
    *,
    terms: int | Sequence[int] = (2, 3),
    amplitude: float | Sequence[float] = (0.5, 1.0),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r""":math:`u_0 = \lambda\sum_{i=1}^m s_i c_i\,U_{j_i}`: random signed sums of images of a given set, rescaled.

    The :math:`j_i` are drawn uniformly from the set, the signs :math:`s_i` uniformly from :math:`\pm 1`, the weights
    :math:`c_i` uniformly from :math:`[1/2, 1]`; :math:`\lambda` scales each sum to max abs value ``amplitude``.

    Parameters
    ----------
    images : torch.Tensor
        The set ``(N, d, d)``, floating.
    count : int
        Number of initial conditions.
    terms : int or pair of int
        Images per sum :math:`m`, or a range ``(low, high)`` drawn uniformly (inclusive).
    amplitude : float or pair of float
        Max abs value of each result, or a range drawn uniformly (positive).
    seed : int
        Seeds the choices, signs, weights and amplitudes.
    dtype : torch.dtype
        Floating dtype of the result (computed in float64).

    Returns
    -------
    torch.Tensor
        ``(count, d, d)``.

    Raises
    ------
    TypeError, ValueError
        On images that are not a floating ``(N, d, d)`` tensor or not finite, a non-positive count, number of
        terms or amplitude, a seed that is not an int or a dtype that is not floating.
    """
    check_tensor(images, "images", ndim=3)
    if not images.dtype.is_floating_point or not bool(torch.isfinite(images).all()):
        raise ValueError("images must be a floating (N, d, d) tensor of finite values.")
    check_positive_int(count, "count")
    low, high = _check_range(terms, "terms", low=1)
    if low != int(low) or high != int(high):
        raise TypeError(f"terms must be an int or a pair of ints, got {terms!r}.")
    amplitudes = _check_range(amplitude, "amplitude")
    if amplitudes[0] <= 0:
        raise ValueError(f"amplitude must be > 0, got {amplitude!r}.")
    generator = torch.Generator().manual_seed(_check_seed(seed))
    dtype = _check_dtype(dtype)
    most = int(high)
    m = torch.randint(int(low), most + 1, (count,), generator=generator)
    which = torch.randint(0, len(images), (count, most), generator=generator)
    sign = 2.0 * torch.randint(0, 2, (count, most), generator=generator, dtype=torch.float64) - 1
    weight = _uniform(generator, (count, most), (0.5, 1.0)) * sign * (torch.arange(most)[None] < m[:, None])
    u = torch.einsum("nm,nmxy->nxy", weight, images.detach().cpu().to(torch.float64)[which])
    return _rescale(u, _uniform(generator, (count,), amplitudes)).to(dtype)


def _band_modes(count: int, size: int, bands: Sequence[tuple[int, int]], generator: torch.Generator) -> torch.Tensor:
    """Sin-cos modes, each from a band drawn uniformly from ``bands``."""
    which = torch.randint(0, len(bands), (count,), generator=generator)
    seeds = torch.randint(0, 2**62, (count,), generator=generator)
    return torch.cat(
        [
            initial_conditions(1, size=size, k_min=bands[b][0], k_max=bands[b][1], seed=int(s))
            for b, s in zip(which.tolist(), seeds.tolist())
        ]
    )


def broadband(
    count: int,
    *,
    size: int = 64,
    values: Sequence[float] = (-1.0, 1.0),
    bands: Sequence[Sequence[int]] = BROADBAND_BANDS,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    r"""Broadband training initial conditions: a mixture that excites every frequency the grid resolves.

    Initial condition :math:`i` is of kind :math:`i \bmod 4`:

    0. a sin-cos mode (:func:`~companion.pde.data.initial_conditions`) with :math:`k_1, k_2` in a band drawn from
       ``bands``;
    1. a random field (:func:`random_fields`) with decay :math:`p \sim U(1, 3)` from the lowest wavenumber of a
       band drawn from ``bands`` up to the grid's Nyquist wavenumber (so the middle frequencies are not drowned
       by the lowest);
    2. localised bumps (:func:`localised_bumps`): 1 to 6 signed bumps of widths 0.02 to 0.2;
    3. a sum of one of each of the three, with random weights in :math:`[1/4, 1]`.

    Each is then mapped affinely onto a random interval :math:`[a, b]\subseteq` ``values`` at least a quarter as
    wide as ``values`` (so amplitudes and offsets vary, the nonlinear Fisher reaction is sampled over the whole
    range). Kinds cycle, so any quarter of consecutive initial conditions is a mixture.

    Parameters
    ----------
    count : int
        Number of initial conditions.
    size : int
        Grid size :math:`d`.
    values : pair of float
        The range of values, ``low < high``.
    bands : sequence of pairs of int
        Wavenumber bands ``(k_min, k_max)`` of the sin-cos modes, ``1 <= k_min <= k_max <= size // 2``.
    seed : int
        Seeds everything (the global generator is left untouched).
    dtype : torch.dtype
        Floating dtype of the result (computed in float64).

    Returns
    -------
    torch.Tensor
        ``(count, size, size)``.

    Raises
    ------
    TypeError, ValueError
        On a non-positive count or size, a value range that is not a pair ``low < high``, bands that are not
        pairs of ints within ``1..size // 2``, a seed that is not an int or a dtype that is not floating.
    """
    check_positive_int(count, "count")
    check_positive_int(size, "size")
    low, high = _check_range(values, "values")
    if isinstance(values, (int, float)) or not low < high:
        raise ValueError(f"values must be a pair (low, high) with low < high, got {values!r}.")
    if isinstance(bands, (str, bytes)) or not isinstance(bands, Sequence) or not bands:
        raise TypeError(f"bands must be a non-empty sequence of pairs (k_min, k_max), got {bands!r}.")
    checked = []
    for band in bands:
        k_min, k_max = _check_range(band, "each band", low=1)
        if k_min != int(k_min) or k_max != int(k_max) or k_max > size // 2:
            raise ValueError(f"each band must be a pair of ints within 1..size // 2 = {size // 2}, got {band!r}.")
        checked.append((int(k_min), int(k_max)))
    generator = torch.Generator().manual_seed(_check_seed(seed))
    dtype = _check_dtype(dtype)

    def draw() -> int:
        return int(torch.randint(0, 2**62, (), generator=generator))

    def field(n: int) -> torch.Tensor:
        p = 1 + 2 * torch.rand(n, generator=generator, dtype=torch.float64)
        lowest = torch.randint(0, len(checked), (n,), generator=generator)
        return torch.cat(
            [
                random_fields(1, size=size, decay=float(q), k_min=checked[b][0], seed=draw())
                for q, b in zip(p.tolist(), lowest.tolist())
            ]
        )

    def bumps(n: int) -> torch.Tensor:
        return localised_bumps(n, size=size, bumps=(1, 6), width=(0.02, 0.2), amplitude=(-1, 1), seed=draw())

    kinds = torch.arange(count) % 4
    u = torch.zeros(count, size, size, dtype=torch.float64)
    for kind, make in enumerate((lambda n: _band_modes(n, size, checked, generator), field, bumps)):
        n = int((kinds == kind).sum())
        if n:
            u[kinds == kind] = make(n)
    n = int((kinds == 3).sum())
    if n:
        parts = [_band_modes(n, size, checked, generator), field(n), bumps(n)]
        weights = _uniform(generator, (3, n), (0.25, 1.0))
        u[kinds == 3] = sum(w[:, None, None] * _rescale(part, torch.ones(n)) for w, part in zip(weights, parts))
    width = high - low
    span = _uniform(generator, (count,), (width / 4, width))
    start = low + (width - span) * torch.rand(count, generator=generator, dtype=torch.float64)
    smallest, largest = u.flatten(1).amin(1), u.flatten(1).amax(1)
    unit = (u - smallest[:, None, None]) / (largest - smallest).clamp_min(1e-300)[:, None, None]
    return (start[:, None, None] + span[:, None, None] * unit).to(dtype)


#: The test families of ``scripts/generalisation_pde.py`` (``companion/results/04_pde_generalisation.json``), in
#: table order, with the seed offset of each (added to the table's base seed, disjoint from every training seed).
GENERALISATION_FAMILIES = (
    "sin-cos k<=3",
    "sin-cos k=4..6",
    "sin-cos k=5..8",
    "localised bumps",
    "random fields p=1.5",
    "sums of sin-cos k<=3 images",
)


def generalisation_families(
    equation: str, *, count: int = 16, size: int = 64, seed: int = 20_000, dtype: torch.dtype = torch.float64
) -> dict[str, torch.Tensor]:
    r"""The test initial conditions of the generalisation table, ``count`` per family, by name
    (:data:`GENERALISATION_FAMILIES`).

    - ``sin-cos k<=3``, ``k=4..6``, ``k=5..8``: :func:`~companion.pde.data.initial_conditions` (values in
      :math:`[-1, 1]`; ``k<=3`` is the family the ``smooth-k3`` networks were trained on);
    - ``localised bumps``: 1 to 4 periodic Gaussians of widths 0.03 to 0.15, signed amplitudes up to 1 for heat,
      positive (0.3 to 1, a population on an empty background) for Fisher;
    - ``random fields p=1.5``: :func:`random_fields` with decay 1.5, max abs value 0.5 to 1 (Fisher: mapped by
      :math:`u\mapsto (1+u)/2` into :math:`[0, 1]`);
    - ``sums of sin-cos k<=3 images``: :func:`sums_and_rescalings` of 2 or 3 sin-cos images with :math:`k\le 3`
      (a set of its own seed), max abs value 0.5 to 1.

    Family ``i`` uses seeds ``seed + 100 i`` and up: choose ``seed`` disjoint from the training seeds.

    Raises
    ------
    TypeError, ValueError
        On an equation other than heat or Fisher, a non-positive count or size, a seed that is not an int or a dtype
        that is not floating.
    """
    if equation not in ("heat", "fisher"):
        raise ValueError(f"equation must be 'heat' or 'fisher', got {equation!r}.")
    check_positive_int(count, "count")
    check_positive_int(size, "size")
    s = _check_seed(seed)
    dtype = _check_dtype(dtype)
    fisher = equation == "fisher"
    images = initial_conditions(32, size=size, k_max=3, seed=s + 501)
    out = {
        "sin-cos k<=3": initial_conditions(count, size=size, k_max=3, seed=s),
        "sin-cos k=4..6": initial_conditions(count, size=size, k_min=4, k_max=6, seed=s + 100),
        "sin-cos k=5..8": initial_conditions(count, size=size, k_min=5, k_max=8, seed=s + 200),
        "localised bumps": localised_bumps(
            count,
            size=size,
            bumps=(1, 4),
            width=(0.03, 0.15),
            amplitude=(0.3, 1.0) if fisher else (-1.0, 1.0),
            seed=s + 300,
        ),
        "random fields p=1.5": random_fields(count, size=size, decay=1.5, amplitude=(0.5, 1.0), seed=s + 400),
        "sums of sin-cos k<=3 images": sums_and_rescalings(images, count, seed=s + 500),
    }
    if fisher:
        out["random fields p=1.5"] = (1 + out["random fields p=1.5"]) / 2
    return {name: u.to(dtype) for name, u in out.items()}
