r"""CIFAR-10 at the scale of the paper: the data, the three backbones and the published results (chapter 6).

:func:`load_cifar10` reads the dataset's python batches from local files (nothing is downloaded) and
:func:`write_fake_cifar10` writes random ones; :func:`cifar_resnet` builds the paper's backbone, unconstrained
(:class:`ResidualConvLayer`), non-expansive (:class:`~companion.lipschitz.layers.NonExpansiveConvLayer`) or switching
(:class:`SwitchingConvLayer`), the constrained ones bounded by
:func:`~companion.lipschitz.layers.network_lipschitz_bound` for every parameter value; :func:`random_crop_flip` is
the paper's augmentation, :func:`robustness_auc` its AUC, :data:`PUBLISHED_CIFAR10` its table.
``scripts/paper_scale.py`` runs the experiment (the book's page "How to run" says how).

References
----------
E. Celledoni, D. Murari, B. Owren, C.-B. Schönlieb, F. Sherry, *Dynamical systems' based neural networks*, SIAM J.
Sci. Comput. 45(6) (2023), section 5; the authors' code: ``davidemurari/StructuredNeuralNetworks``.
A. Krizhevsky, *Learning multiple layers of features from tiny images* (2009).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice, check_positive_int, check_tensor
from .._settings import FixedSettings
from .inference import DerivedCache
from .layers import NonExpansiveConvLayer, NormalizedLinear, Standardize
from .operator_norms import conv2d_same, conv2d_same_adjoint, conv_operator_norm

__all__ = [
    "CIFAR10_FOLDER",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR10_REGIMES",
    "PAPER_EPSILONS",
    "PublishedRow",
    "PUBLISHED_CIFAR10",
    "load_cifar10",
    "write_fake_cifar10",
    "robustness_auc",
    "random_crop_flip",
    "NormalizedConv2d",
    "ResidualConvLayer",
    "SwitchingConvLayer",
    "CifarResNet",
    "cifar_resnet",
]

#: The folder, inside ``root``, that holds the python batches (the tarball's and torchvision's layout).
CIFAR10_FOLDER = "cifar-10-batches-py"
#: Per-channel mean and standard deviation of the normalisation inside the model: the authors' values. (The
#: per-pixel standard deviation of the training set is about (0.247, 0.243, 0.261); these smaller values make the
#: normalisation's Lipschitz constant :math:`1/\min s \approx 5.0`, which the certificates count.)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
#: The :math:`\ell_2` radii of the paper's robustness curves, in [0, 1] pixel units.
PAPER_EPSILONS = (0.0, 8 / 255, 16 / 255, 36 / 255, 0.3, 0.5, 0.6, 0.8, 1.0)
#: The backbones :func:`cifar_resnet` builds.
CIFAR10_REGIMES = ("unconstrained", "nonexpansive", "switching")

_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILES = ("test_batch",)
_PIXELS = 3 * 32 * 32
_CLASSES = (b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck")


class PublishedRow(NamedTuple):
    """One published row: robust accuracy in % at each of :data:`PAPER_EPSILONS`, and the curve's AUC."""

    accuracy: tuple[float, ...]
    auc: float


# Celledoni et al. (2023), CIFAR-10: robust accuracy (%), foolbox 3.3.3 L2PGD(steps=10), first 1024 test images, at
# PAPER_EPSILONS, and the AUC; from davidemurari/StructuredNeuralNetworks "Adversarial Robustness/CIFAR10/*/*.txt".
#: The paper's CIFAR-10 table, by ``(model, margin)``; the models are ``"unconstrained"``, ``"nonexpansive"``,
#: ``"switching"`` (the paper's "switching flexible", :class:`SwitchingConvLayer`) and ``"switching_prescribed"``.
PUBLISHED_CIFAR10 = MappingProxyType(
    {
        ("unconstrained", 0.07): PublishedRow((88.2, 86.8, 84.6, 78.1, 63.8, 42.9, 33.2, 17.3, 7.3), 0.451),
        ("unconstrained", 0.15): PublishedRow((90.9, 89.9, 87.7, 80.8, 64.1, 41.3, 34.1, 16.8, 7.2), 0.455),
        ("unconstrained", 0.3): PublishedRow((91.4, 88.9, 85.8, 79.2, 58.2, 34.8, 23.9, 9.5, 4.0), 0.399),
        ("nonexpansive", 0.07): PublishedRow((83.9, 82.6, 82.1, 79.4, 74.2, 66.1, 62.7, 54.6, 48.2), 0.662),
        ("nonexpansive", 0.15): PublishedRow((81.1, 80.1, 79.2, 78.0, 72.6, 66.8, 63.1, 55.6, 47.0), 0.657),
        ("nonexpansive", 0.3): PublishedRow((79.7, 79.0, 78.4, 76.5, 71.8, 64.9, 61.3, 55.6, 47.8), 0.648),
        ("switching", 0.07): PublishedRow((82.2, 81.2, 80.8, 79.0, 74.6, 68.7, 65.5, 58.7, 51.3), 0.680),
        ("switching", 0.15): PublishedRow((81.7, 81.3, 80.3, 78.5, 74.3, 68.0, 64.2, 56.9, 51.0), 0.672),
        ("switching", 0.3): PublishedRow((83.2, 82.3, 80.8, 77.6, 74.1, 66.8, 62.9, 55.7, 48.3), 0.662),
        ("switching_prescribed", 0.07): PublishedRow((80.8, 79.8, 79.0, 77.5, 73.9, 67.8, 64.6, 58.1, 51.6), 0.672),
        ("switching_prescribed", 0.15): PublishedRow((79.6, 78.7, 78.2, 76.1, 71.8, 65.7, 62.4, 55.8, 50.5), 0.653),
        ("switching_prescribed", 0.3): PublishedRow((78.9, 78.4, 77.9, 75.5, 71.0, 65.0, 62.0, 55.1, 49.4), 0.647),
    }
)


#: What a CIFAR-10 batch may unpickle: numpy arrays (both spellings of numpy's core module), nothing that runs code.
_CORE = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric")
_ALLOWED_GLOBALS = {(m, n) for m in _CORE for n in ("_reconstruct", "scalar", "_frombuffer")} | {("numpy", "ndarray")}
_ALLOWED_GLOBALS |= {("numpy", "dtype"), ("_codecs", "encode"), ("builtins", "bytes"), ("__builtin__", "bytes")}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays, lists, numbers and bytes; refuses any other global (pickle can run code)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"the file asks for {module}.{name}, which no CIFAR-10 batch contains")
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core." + module[len("numpy.core.") :]  # numpy 2 renamed it (and warns on the old name)
        return super().find_class(module, name)


def _malformed(path: Path, why: str) -> ValueError:
    return ValueError(
        f"{path} is not a CIFAR-10 python batch ({why}). Each file must be a pickled dict with b'data', a uint8 "
        f"array of shape (n, {_PIXELS}), and b'labels', n integers in 0..9; re-extract cifar-10-python.tar.gz."
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images ``(n, 3072)`` uint8 and labels ``(n,)`` int64 of one batch file, checked."""
    with open(path, "rb") as file:
        try:
            batch = _ArrayUnpickler(file, encoding="bytes").load()
        except Exception as error:  # unpickling garbage raises many kinds of errors; all mean the same here
            raise _malformed(path, f"unpickling failed: {type(error).__name__}: {error}") from error
    if not isinstance(batch, dict):
        raise _malformed(path, f"it holds a {type(batch).__name__}, not a dict")
    data, labels = batch.get(b"data", batch.get("data")), batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        shown = f"shape {data.shape} and dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _malformed(path, f"its b'data' has {shown}")
    raw = np.asarray(labels)
    if raw.size and raw.dtype.kind not in "iu":  # an empty list reads as float64
        raise _malformed(path, f"its b'labels' are not integers (dtype {raw.dtype})")
    labels = raw.astype(np.int64)
    if labels.shape != (len(data),) or (len(labels) and not (labels.min() >= 0 and labels.max() <= 9)):
        raise _malformed(path, f"its b'labels' are not {len(data)} integers in 0..9")
    return data, labels


def load_cifar10(root: str | os.PathLike, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The CIFAR-10 training set (``data_batch_1`` to ``_5``) or test set (``test_batch``), from local files.

    Reads ``root/cifar-10-batches-py``, the folder that extracting ``cifar-10-python.tar.gz`` into ``root``
    creates, and that ``torchvision.datasets.CIFAR10(root, download=True)`` writes. Nothing is downloaded. The
    files are unpickled with a loader that accepts numpy arrays only, so a tampered file cannot run code.

    Parameters
    ----------
    root : str or os.PathLike
        The folder that contains ``cifar-10-batches-py``.
    train : bool
        The 50,000 training images, or the 10,000 test images.

    Returns
    -------
    tuple of torch.Tensor
        Images of shape ``(n, 3, 32, 32)``, float32 in [0, 1] (the bytes over 255), and labels ``(n,)``, int64 in
        0..9, in the files' order.

    Raises
    ------
    TypeError
        If ``train`` is not a bool.
    FileNotFoundError
        If the folder or one of its files is missing; the message names the folder and says how to get the data.
    ValueError
        If a file is not a CIFAR-10 python batch.
    """
    if not isinstance(train, bool):
        raise TypeError(f"train must be True (the training set) or False (the test set), got {train!r}.")
    folder = Path(root).expanduser() / CIFAR10_FOLDER
    names = _TRAIN_FILES if train else _TEST_FILES
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 is not in {folder.resolve()} (missing: {', '.join(missing)}). Nothing is downloaded at run "
            f"time: download the python version, https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, and "
            f"extract it into {Path(root).expanduser().resolve()} (tar -xzf cifar-10-python.tar.gz -C <root> creates "
            f"{CIFAR10_FOLDER}/), or run torchvision.datasets.CIFAR10(<root>, download=True) on a machine with "
            "network access and copy the folder here."
        )
    parts = [_read_batch(folder / name) for name in names]
    data = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    images = torch.from_numpy(data).reshape(-1, 3, 32, 32).to(torch.float32).div_(255.0)
    return images, torch.from_numpy(labels)


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
    return value


def write_fake_cifar10(root: str | os.PathLike, *, train_size: int, test_size: int, seed: int) -> Path:
    """Write random images with random labels in CIFAR-10's python format (torchvision's ``FakeData`` for it).

    ``train_size`` images are spread over ``data_batch_1`` to ``_5`` and ``test_size`` go to ``test_batch``, in
    ``root/cifar-10-batches-py`` (created; files replaced), with ``batches.meta``; :func:`load_cifar10` reads them
    like the real files. ``seed`` seeds NumPy's ``default_rng``. Returns the folder.

    Raises
    ------
    ValueError
        On a size or seed that is not an int >= 0.
    """
    _check_count(train_size, "train_size")
    _check_count(test_size, "test_size")
    rng = np.random.default_rng(_check_count(seed, "seed"))
    folder = Path(root).expanduser() / CIFAR10_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [train_size // 5 + (i < train_size % 5) for i in range(5)]
    for name, count in (*zip(_TRAIN_FILES, sizes), (_TEST_FILES[0], test_size)):
        batch = {
            b"batch_label": f"fake {name}".encode(),
            b"labels": rng.integers(0, 10, size=count).tolist(),
            b"data": rng.integers(0, 256, size=(count, _PIXELS), dtype=np.uint8),
            b"filenames": [f"fake_{i:05d}.png".encode() for i in range(count)],
        }
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file, protocol=2)  # the protocol of the real files
    meta = {b"num_cases_per_batch": max(sizes), b"label_names": list(_CLASSES), b"num_vis": _PIXELS}
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump(meta, file, protocol=2)
    return folder


def robustness_auc(epsilons, accuracies) -> float:
    r"""Area under a robustness curve by the trapezoidal rule: :math:`\sum_i (\varepsilon_{i+1}-\varepsilon_i)
    (a_i + a_{i+1})/2`.

    As the paper computes it (``computeAUC``), in float64: ``epsilons`` increasing radii >= 0 (at least two),
    ``accuracies`` the robust accuracy at each as fractions in [0, 1], no normalisation (the paper's radii run from
    0 to 1, so its AUC is the mean robust accuracy over [0, 1]).

    Raises
    ------
    ValueError
        On lengths that differ or are below 2, radii that are negative or not increasing, accuracies outside
        [0, 1] or values that are not finite numbers.
    """
    radii = np.asarray(epsilons, dtype=np.float64)
    values = np.asarray(accuracies, dtype=np.float64)
    if radii.ndim != 1 or radii.shape != values.shape or len(radii) < 2:
        raise ValueError(f"epsilons and accuracies need the same length >= 2, got {radii.shape} and {values.shape}.")
    if not (np.isfinite(radii).all() and np.isfinite(values).all()):
        raise ValueError("epsilons and accuracies must be finite numbers.")
    if radii[0] < 0 or not (np.diff(radii) > 0).all():
        raise ValueError(f"epsilons must be >= 0 and strictly increasing, got {radii.tolist()}.")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"accuracies must be fractions in [0, 1] (percentages / 100), got {values.tolist()}.")
    return float(np.sum(np.diff(radii) * (values[1:] + values[:-1]) / 2))


def random_crop_flip(
    images: torch.Tensor, *, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The paper's augmentation: ``RandomCrop(size, padding, zero fill)`` then ``RandomHorizontalFlip()``, batched.

    Each image is zero-padded by ``padding`` pixels per side, cropped back to its size at a uniformly drawn
    offset, and mirrored left-right with probability 1/2, independently per image, on the images' device.

    Parameters
    ----------
    images : torch.Tensor
        Shape ``(batch, channels, height, width)``.
    padding : int
        Pixels of zero padding per side (the crop's offsets are drawn from ``0..2 padding``), >= 0.
    generator : torch.Generator, optional
        Source of the offsets and flips (on any device; they are moved to the images'); default PyTorch's
        generator of the images' device.

    Returns
    -------
    torch.Tensor
        The augmented images, of the input's shape, dtype and device.

    Raises
    ------
    TypeError, ValueError
        On images that are not a 4-D floating tensor, a negative padding or a generator that is not one.
    """
    check_tensor(images, "images", ndim=4)
    padding = _check_count(padding, "padding")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
    n, channels, height, width = images.shape
    device = images.device
    source = device if generator is None else generator.device
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=source).to(device)
    flips = torch.randint(0, 2, (n,), generator=generator, device=source).to(device).bool()
    rows = offsets[0, :, None] + torch.arange(height, device=device)
    columns = offsets[1, :, None] + torch.arange(width, device=device)
    columns = torch.where(flips[:, None], columns.flip(1), columns)  # a flip of the crop reads its columns reversed
    padded = F.pad(images, (padding, padding, padding, padding))
    samples = torch.arange(n, device=device)[:, None, None, None]
    planes = torch.arange(channels, device=device)[None, :, None, None]
    return padded[samples, planes, rows[:, None, :, None], columns[:, None, None, :]]


def _check_kernel_size(kernel_size) -> int:
    if check_positive_int(kernel_size, "kernel_size") % 2 == 0:
        raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}.")
    return kernel_size


def _check_images(x: torch.Tensor, channels: int) -> None:
    if check_tensor(x, "x", min_ndim=3).shape[-3] != channels:
        raise ValueError(f"x must have {channels} channels, got shape {tuple(x.shape)}.")


def _normalized(weight: torch.Tensor, input_size) -> torch.Tensor:
    r""":math:`K/\max(1,\bar k)`, :math:`\bar k\ge\lVert K\rVert_2` the certified bound of the zero-padded 'same'
    convolution on ``input_size`` images (:func:`~companion.lipschitz.operator_norms.conv_operator_norm`)."""
    bound = conv_operator_norm(weight, tuple(input_size), padding_mode="zeros")
    return weight / torch.clamp(bound, min=1.0)


def _delta_orthogonal_(weight: torch.Tensor) -> torch.Tensor:
    """Delta-orthogonal initialisation (Xiao et al. 2018), as the authors': an orthogonal matrix at the kernel's
    centre, zeros elsewhere, so the convolution is an isometry (norm 1) at the start. Drawn from PyTorch's generator."""
    out_channels, in_channels, k1, k2 = weight.shape
    square = torch.empty(max(out_channels, in_channels), max(out_channels, in_channels))
    nn.init.orthogonal_(square)
    with torch.no_grad():
        weight.zero_()
        weight[:, :, k1 // 2, k2 // 2] = square[:out_channels, :in_channels].to(weight)
    return weight


class NormalizedConv2d(DerivedCache, nn.Conv2d):
    r"""A stride-1 'same' convolution with zero padding, divided by its norm: 1-Lipschitz for every weight.

    .. math:: x\mapsto \frac{K\star x}{\max(1,\bar k)} + b,

    with :math:`\bar k\ge\lVert K\rVert_2` the certified bound of
    :func:`~companion.lipschitz.operator_norms.conv_operator_norm` at the size of each input (computed in
    ``forward``, differentiable): 1-Lipschitz in :math:`\ell_2` for every weight and image size. (The paper divides
    its lifts by a power-iteration estimate, from below, after each optimiser step.)

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output; inputs have shape ``(batch, in_channels, height, width)``.
    kernel_size : int
        Odd kernel size.
    bias : bool
        Add a learned bias (the paper's lifts have none).

    Raises
    ------
    TypeError, ValueError
        On bad sizes or an even kernel; in ``forward``, on an input with another number of channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, bias: bool = False) -> None:
        check_positive_int(in_channels, "in_channels"), check_positive_int(out_channels, "out_channels")
        _check_kernel_size(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)

    def normalized_weight(self, input_size: tuple[int, int]) -> torch.Tensor:
        """The kernel used in ``forward`` for images of ``input_size``: its operator norm there is at most 1."""
        size, weight = tuple(input_size), self.weight
        return self.derived(f"weight{size}", lambda: _normalized(weight, size), weight)

    def lipschitz_bound(self) -> float:
        """1 for every weight."""
        return 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels)
        return conv2d_same(x, self.normalized_weight(x.shape[-2:]), self.bias)


class ResidualConvLayer(nn.Module):
    r"""The unconstrained residual layer of the paper's baseline: :math:`x\mapsto x + B\,\mathrm{ReLU}(Ax)`.

    :math:`A` and :math:`B` are 'same' convolutions with biases (PyTorch's initialisation); one explicit Euler step
    of size 1 of :math:`\dot x = B\,\mathrm{ReLU}(Ax)`. No Lipschitz bound is claimed, so
    :func:`~companion.lipschitz.layers.network_lipschitz_bound` refuses it.

    Parameters
    ----------
    channels : int
        Channels of the state; inputs have shape ``(batch, channels, height, width)``.
    kernel_size : int
        Odd kernel size of both convolutions.

    Raises
    ------
    TypeError, ValueError
        On a bad size or an even kernel; in ``forward``, on an input with another number of channels.
    """

    def __init__(self, channels: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        padding = _check_kernel_size(kernel_size) // 2
        self.inner = nn.Conv2d(channels, channels, kernel_size, padding=padding)
        self.outer = nn.Conv2d(channels, channels, kernel_size, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels)
        return x + self.outer(F.relu(self.inner(x)))


class SwitchingConvLayer(DerivedCache, FixedSettings, nn.Module):
    r"""The paper's "switching flexible" pair: :math:`S` contractive sub-steps, then one expansive step, one conv.

    .. math:: y \leftarrow y - \tfrac{h_C}{S}\,A^\top\sigma_a(Ay + b)\quad(S\text{ times}),\qquad
       x \leftarrow y + h_E\,A^\top\mathrm{ReLU}(Ay + b),

    with :math:`\sigma_a` the LeakyReLU of slope :math:`a`, :math:`A` the 'same' convolution divided by
    :math:`\max(1,\bar a)` (:class:`NormalizedConv2d`'s normalisation, so :math:`\lVert A\rVert_2\le1`),
    :math:`A^\top` its exact adjoint, :math:`h_C` the learned step clamped to ``contractive_range`` and :math:`h_E`
    the learned step clamped to :math:`[0, \text{expansive\_max}]`, all in ``forward``.

    **Guarantee: the layer is** :math:`(1+h_E)` **-Lipschitz for every parameter value.** Each contractive
    sub-step is an explicit Euler step of :math:`-\nabla V`, :math:`V` convex and :math:`\lVert A\rVert^2`-smooth
    (:math:`\sigma_a` monotone, slopes in :math:`[a, 1]`), so non-expansive as :math:`h_C/S\le2\le2/\lVert
    A\rVert^2`; the expansive step moves by at most :math:`h_E\lVert A\rVert^2\lVert\Delta y\rVert`. No strict
    contraction is claimed: the factor :math:`(1-2ah_C/S+h_C^2/S^2)^{S/2}<1` of
    :func:`~companion.lipschitz.switching.contractive_factor` needs :math:`\lVert A\Delta y\rVert=\lVert\Delta
    y\rVert` (an orthogonal :math:`A`), and a normalised convolution may shrink directions to nothing, where the
    sub-step is the identity. The expansion is not paid back, and a network of these layers is bounded by the
    product of the :math:`1+h_E` (at most 1.05 each); orthogonal convolutions would be needed to claim more. (The
    authors keep :math:`A` near orthogonal by a penalty only, and their clamp lets :math:`h_E` reach 1.9;
    ``CIFAR10/Switch flexible/network.py`` of their repository.)

    Parameters
    ----------
    channels : int
        Channels of the state; inputs have shape ``(batch, channels, height, width)``.
    kernel_size : int
        Odd kernel size of :math:`A` (delta-orthogonal initialisation, as the authors').
    contractive_range : tuple of float
        Interval of :math:`h_C`, with ``0 <= low < high <= 2 * n_steps`` (the paper's ``(0.11, 1.89)``).
    expansive_max : float
        Largest :math:`h_E`, >= 0 (0.05 in the paper).
    slope : float
        :math:`a\in(0, 1]`, the LeakyReLU slope of the contractive sub-steps.
    n_steps : int
        :math:`S`, the number of contractive sub-steps.

    Raises
    ------
    TypeError, ValueError
        On bad sizes, an even kernel, a bad range, bound or slope; in ``forward``, on an input with another
        number of channels.
    """

    _sizes = ("channels", "kernel_size")
    _settings = ("contractive_range", "expansive_max", "slope", "n_steps")

    def __init__(
        self,
        channels: int,
        *,
        kernel_size: int = 3,
        contractive_range: tuple[float, float] = (0.11, 1.89),
        expansive_max: float = 0.05,
        slope: float = 0.5,
        n_steps: int = 2,
    ) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.kernel_size = _check_kernel_size(kernel_size)
        self._configure(contractive_range=contractive_range, expansive_max=expansive_max, slope=slope, n_steps=n_steps)
        self.weight = nn.Parameter(_delta_orthogonal_(torch.empty(channels, channels, kernel_size, kernel_size)))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.raw_h_contractive = nn.Parameter(torch.tensor(1.0))
        self.raw_h_expansive = nn.Parameter(torch.tensor(self.expansive_max / 2))

    def _configure(self, *, contractive_range, expansive_max, slope, n_steps) -> None:
        n_steps = check_positive_int(n_steps, "n_steps")
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 < slope <= 1:
            raise ValueError(f"slope must be a number in (0, 1], got {slope!r}.")
        if isinstance(expansive_max, bool) or not isinstance(expansive_max, (int, float)) or not expansive_max >= 0:
            raise ValueError(f"expansive_max must be a number >= 0, got {expansive_max!r}.")
        if not (isinstance(contractive_range, (tuple, list)) and len(contractive_range) == 2):
            raise TypeError(f"contractive_range must be a pair (low, high), got {contractive_range!r}.")
        low, high = contractive_range
        if not 0 <= low < high <= 2 * n_steps:
            raise ValueError(f"contractive_range must satisfy 0 <= low < high <= 2 n_steps, got {contractive_range}.")
        self.contractive_range, self.expansive_max = (float(low), float(high)), float(expansive_max)
        self.slope, self.n_steps = float(slope), n_steps

    def normalized_weight(self, input_size: tuple[int, int]) -> torch.Tensor:
        """The kernel of :math:`A` used in ``forward`` for images of ``input_size`` (operator norm at most 1)."""
        size, weight = tuple(input_size), self.weight
        return self.derived(f"weight{size}", lambda: _normalized(weight, size), weight)

    def steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The clamped :math:`(h_C, h_E)` used in ``forward``."""
        h_contractive = self.raw_h_contractive.clamp(*self.contractive_range)
        return h_contractive, self.raw_h_expansive.clamp(0.0, self.expansive_max)

    def lipschitz_bound(self) -> float:
        """:math:`1 + h_E` at the current parameters."""
        return 1.0 + float(self.steps()[1].detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.channels)
        kernel = self.normalized_weight(x.shape[-2:])
        h_contractive, h_expansive = self.steps()
        step = h_contractive / self.n_steps
        for _ in range(self.n_steps):
            pre = conv2d_same(x, kernel, self.bias)
            x = x - step * conv2d_same_adjoint(F.leaky_relu(pre, self.slope), kernel)
        return x + h_expansive * conv2d_same_adjoint(F.relu(conv2d_same(x, kernel, self.bias)), kernel)


class CifarResNet(nn.Sequential):
    """The network :func:`cifar_resnet` returns: an ``nn.Sequential`` that takes ``(batch, 3, 32, 32)`` images only.

    Raises
    ------
    TypeError, ValueError
        In ``forward``, on anything but a floating tensor of ``(batch, 3, 32, 32)`` images.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "images", ndim=4)
        if tuple(x.shape[1:]) != (3, 32, 32):
            raise ValueError(
                f"images must have shape (batch, 3, 32, 32) (CIFAR-10, pixels in [0, 1]), got {tuple(x.shape)}."
            )
        return super().forward(x)


def _check_channels(channels) -> tuple[int, ...]:
    if not isinstance(channels, (tuple, list)) or not 1 <= len(channels) <= 5:
        raise TypeError(f"channels must be a tuple of 1 to 5 ints (one per block), got {channels!r}.")
    return tuple(check_positive_int(width, "channels[i]") for width in channels)


def _block(regime: str, in_channels: int, channels: int, layers: int) -> nn.Sequential:
    """Lift, ReLU, the dynamic layers, a 2x2 max-pool (the authors' block: ``relu(lift(x))`` first)."""
    if regime == "unconstrained":
        lift = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        dynamic = [ResidualConvLayer(channels) for _ in range(layers)]
    elif regime == "nonexpansive":
        lift = NormalizedConv2d(in_channels, channels)
        dynamic = [NonExpansiveConvLayer(channels) for _ in range(layers)]
        for layer in dynamic:
            _delta_orthogonal_(layer.weight)
    else:  # one SwitchingConvLayer is a contractive and an expansive layer of the paper's count
        lift = NormalizedConv2d(in_channels, channels)
        dynamic = [SwitchingConvLayer(channels) for _ in range(layers // 2)]
    return nn.Sequential(lift, nn.ReLU(), *dynamic, nn.MaxPool2d(2))


def cifar_resnet(
    regime: str, *, n_classes: int = 10, channels: tuple[int, ...] = (32, 64, 128), layers_per_block: int = 4
) -> CifarResNet:
    r"""The paper's CIFAR-10 backbone in one of three regimes: unconstrained, non-expansive or switching.

    ``Standardize(CIFAR10_MEAN, CIFAR10_STD)`` inside the model (so attacks and certificates work in [0, 1]
    pixels), then per block a :math:`3\times3` lifting convolution and a ReLU, ``layers_per_block`` dynamic
    layers and ``MaxPool2d(2)``; then ``Flatten`` and a linear map from :math:`4\cdot4\cdot128` to ``n_classes``.

    * ``"unconstrained"``: ``nn.Conv2d`` lifts, :class:`ResidualConvLayer`, ``nn.Linear``;
    * ``"nonexpansive"``: :class:`NormalizedConv2d` lifts,
      :class:`~companion.lipschitz.layers.NonExpansiveConvLayer`,
      :class:`~companion.lipschitz.layers.NormalizedLinear`;
    * ``"switching"``: :class:`NormalizedConv2d` lifts, ``layers_per_block / 2`` :class:`SwitchingConvLayer` (each
      a contractive and an expansive layer of the paper's count), :class:`~companion.lipschitz.layers.NormalizedLinear`.

    The constraints are in ``forward``, so they hold for every parameter value, and
    :func:`~companion.lipschitz.layers.network_lipschitz_bound` bounds the constrained networks in [0, 1] pixels:
    :math:`1/\min s\approx5.0` for ``"nonexpansive"``, times :math:`\prod(1+h_E)` for ``"switching"``. The paper's
    soft orthogonality penalties are not used (the bounds do not need them). The dynamic convolutions of the
    constrained regimes start delta-orthogonal, as the authors'. Parameters are drawn from PyTorch's global
    generator (seed it for a reproducible network).

    Parameters
    ----------
    regime : {"unconstrained", "nonexpansive", "switching"}
        The kind of network (:data:`CIFAR10_REGIMES`).
    n_classes : int
        Number of logits.
    channels : tuple of int
        Channels of each block (1 to 5 blocks; the images are halved per block).
    layers_per_block : int
        Dynamic layers per block, as the paper counts them (even for ``"switching"``).

    Returns
    -------
    CifarResNet
        Maps ``(batch, 3, 32, 32)`` images in [0, 1] to ``(batch, n_classes)`` logits.

    Raises
    ------
    TypeError, ValueError
        On an unknown regime, bad sizes, or an odd ``layers_per_block`` for ``"switching"``.
    """
    check_choice(regime, "regime", CIFAR10_REGIMES)
    check_positive_int(n_classes, "n_classes")
    channels = _check_channels(channels)
    check_positive_int(layers_per_block, "layers_per_block")
    if regime == "switching" and layers_per_block % 2:
        raise ValueError(
            f"layers_per_block must be even for 'switching': each SwitchingConvLayer is a contractive and an "
            f"expansive layer of the paper's count, got {layers_per_block}."
        )
    mean, std = (torch.tensor(values).reshape(3, 1, 1) for values in (CIFAR10_MEAN, CIFAR10_STD))
    blocks = [_block(regime, c_in, c_out, layers_per_block) for c_in, c_out in zip((3, *channels), channels)]
    last = (nn.Linear if regime == "unconstrained" else NormalizedLinear)(
        channels[-1] * (32 >> len(channels)) ** 2, n_classes
    )
    return CifarResNet(Standardize(mean, std), *blocks, nn.Flatten(), last)
