r"""Operator norms of dense and convolutional maps: exact values, certified upper bounds and estimates.

* :func:`dense_operator_norm` is exact; :func:`periodic_conv_operator_norm` is the exact norm of a
  circular convolution at a given input size (from the FFT of the kernel); :func:`conv_operator_norm`
  is that, or, for zero padding, a *certified* upper bound (the zero-padded operator is a restriction
  of a periodic one on a larger grid). :func:`power_iteration` is the usual *estimate* (a lower bound).
* :func:`conv2d_same` and :func:`conv2d_same_adjoint`: a stride-1 'same' convolution and its exact adjoint,
  for zero and circular padding.

The public names are re-exported by :mod:`companion.lipschitz`.

References
----------
H. Sedghi, V. Gupta, P. M. Long, *The singular values of convolutional layers*, ICLR (2019).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from .._checks import check_choice, check_positive_int, check_tensor

__all__ = [
    "PADDING_MODES",
    "dense_operator_norm",
    "periodic_conv_operator_norm",
    "conv_operator_norm",
    "reshaped_kernel_norm",
    "power_iteration",
    "conv2d_same",
    "conv2d_same_adjoint",
    "conv_power_iteration",
]

#: Boundary handling of the convolutions whose adjoint and norm are known exactly.
PADDING_MODES = ("zeros", "circular")


def dense_operator_norm(weight: torch.Tensor) -> torch.Tensor:
    r"""Exact :math:`\|W\|_2` (largest singular value) of a matrix; differentiable.

    Parameters
    ----------
    weight : torch.Tensor
        Shape ``(out, in)``, floating point.

    Returns
    -------
    torch.Tensor
        A scalar in the dtype of ``weight`` (exact up to the rounding of an SVD in that dtype): LAPACK's largest
        singular value, the same with and without gradients; the gradient is that of the top singular pair.

    Raises
    ------
    TypeError, ValueError
        If ``weight`` is not a 2-D floating tensor.
    """
    check_tensor(weight, "weight", ndim=2)
    return _largest_singular_value(weight[None])


def _check_kernel(weight: torch.Tensor, input_size) -> tuple[int, int]:
    check_tensor(weight, "weight", ndim=4)
    if not (isinstance(input_size, (tuple, list)) and len(input_size) == 2):
        raise TypeError(f"input_size must be a pair (height, width), got {input_size!r}.")
    return check_positive_int(input_size[0], "input_size[0]"), check_positive_int(input_size[1], "input_size[1]")


def periodic_conv_operator_norm(weight: torch.Tensor, input_size: tuple[int, int]) -> torch.Tensor:
    r"""Exact norm of the circular (periodic) convolution with ``weight`` on ``input_size`` images.

    The operator is block circulant, so the FFT block-diagonalises it: with
    :math:`\hat W(\omega)\in\mathbb C^{C_\text{out}\times C_\text{in}}` the 2-D DFT of the kernel
    embedded (wrapped) in an :math:`n_1\times n_2` grid,
    :math:`\|A\|_2 = \max_\omega \|\hat W(\omega)\|_2` (Sedghi, Gupta, Long 2019). Shifts and the
    cross-correlation convention only change phases, which leave singular values unchanged.

    Parameters
    ----------
    weight : torch.Tensor
        Kernel of shape ``(C_out, C_in, k1, k2)`` (stride 1).
    input_size : tuple of int
        Spatial size ``(n1, n2)`` of the input.

    Returns
    -------
    torch.Tensor
        The norm, a differentiable scalar.

    Raises
    ------
    TypeError, ValueError
        If ``weight`` is not a 4-D floating tensor or ``input_size`` not a pair of positive ints.
    """
    n1, n2 = _check_kernel(weight, input_size)
    c_out, c_in, k1, k2 = weight.shape
    wrapped = weight.new_zeros(c_out, c_in, k1, n2).index_add(3, torch.arange(k2, device=weight.device) % n2, weight)
    wrapped = weight.new_zeros(c_out, c_in, n1, n2).index_add(2, torch.arange(k1, device=weight.device) % n1, wrapped)
    blocks = torch.fft.fft2(wrapped).permute(2, 3, 0, 1)  # (n1, n2, C_out, C_in)
    return _largest_singular_value(blocks.flatten(0, 1))


def _largest_singular_value(blocks: torch.Tensor) -> torch.Tensor:
    r"""The largest singular value of a stack of matrices ``(batch, m, n)``: the value of ``svdvals``, and a gradient
        through the top singular pair of the block that attains it.

        The value is LAPACK's singular values computed without vectors, as ``matrix_norm(ord=2)`` computes them. Its
        backward would need a full SVD with vectors of every block, which fails to converge ("too many repeated
        singular values") on the near-orthogonal blocks of a convolution close to an isometry, the state non-expansive
        training drives it to. The gradient of :math:`\sigma_{\max}(B)` is :math:`\mathrm{Re}(u v^H)` for a top singular
        pair (a subgradient when :math:`\sigma_{\max}` is repeated); here :math:`v` is the top eigenvector of
        :math:`B^H B` (a Hermitian eigensolver, which always converges) and :math:`\lVert Bv
    Vert` carries it.
    """
    top = torch.linalg.svdvals(blocks.detach()).amax(dim=-1)
    index = top.argmax().reshape(1)
    value = top.index_select(0, index)[0]
    if not torch.is_grad_enabled():
        return value
    block = blocks.index_select(0, index)[0]
    # A power of two (exact to divide by) near the largest entry: no under- or overflow below.
    scale = torch.exp2(torch.log2(block.detach().abs().amax().clamp_min(torch.finfo(top.dtype).tiny)).floor())
    plain = block.detach() / scale
    vector = torch.linalg.eigh(plain.mH @ plain).eigenvectors[:, -1]
    carrier = torch.linalg.vector_norm((block / scale) @ vector) * scale
    return value + (carrier - carrier.detach())


def conv_operator_norm(
    weight: torch.Tensor, input_size: tuple[int, int], *, padding_mode: str = "zeros"
) -> torch.Tensor:
    r"""An upper bound on the norm of a stride-1 convolution with ``weight`` on ``input_size`` images.

    ``"circular"``: exact (:func:`periodic_conv_operator_norm`). ``"zeros"`` (any zero padding): the
    zero-padded operator equals :math:`R\,C_N\,E`, with :math:`E` the zero-extension of the image to an
    :math:`N = n + k - 1` grid, :math:`C_N` the periodic convolution there and :math:`R` a restriction;
    :math:`\|E\| = \|R\| = 1`, so :math:`\|C_N\|` is a certified bound (it is never below the true norm).

    Raises
    ------
    TypeError, ValueError
        On a malformed kernel or size, or an unknown ``padding_mode``.
    """
    n1, n2 = _check_kernel(weight, input_size)
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    if padding_mode == "circular":
        return periodic_conv_operator_norm(weight, (n1, n2))
    return periodic_conv_operator_norm(weight, (n1 + weight.shape[2] - 1, n2 + weight.shape[3] - 1))


def reshaped_kernel_norm(weight: torch.Tensor) -> torch.Tensor:
    r"""Norm of the kernel reshaped to a ``(C_out, C_in k1 k2)`` matrix: **not** the operator norm.

    Shown for contrast: it can lie far below :func:`conv_operator_norm` (for the :math:`3\times3` box filter,
    3 against 9), so a step size chosen from it breaks the non-expansiveness guarantee.

    Raises
    ------
    TypeError, ValueError
        If ``weight`` is not a 4-D floating tensor.
    """
    check_tensor(weight, "weight", ndim=4)
    return torch.linalg.matrix_norm(weight.flatten(1), ord=2)


def power_iteration(
    operator: Callable[[torch.Tensor], torch.Tensor],
    adjoint: Callable[[torch.Tensor], torch.Tensor],
    example: torch.Tensor,
    *,
    iterations: int = 100,
    seed: int = 0,
) -> float:
    r"""Estimate :math:`\|A\|_2` by power iteration :math:`u\leftarrow A^\top Au/\|A^\top Au\|`.

    An estimate from below (it converges to the norm from below); never use it alone as a certificate.

    Parameters
    ----------
    operator, adjoint : callable
        The linear map :math:`A` and its adjoint :math:`A^\top`.
    example : torch.Tensor
        A tensor of the input shape and dtype (its values are not used).
    iterations : int
        Number of iterations.
    seed : int
        Seed of the random start.

    Raises
    ------
    TypeError, ValueError
        On non-callable maps or a bad count.
    """
    if not (callable(operator) and callable(adjoint)):
        raise TypeError("operator and adjoint must be callables mapping tensors to tensors.")
    check_tensor(example, "example")
    check_positive_int(iterations, "iterations")
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(example.shape, generator=gen, dtype=example.dtype).to(example.device)
    u = u / u.norm()
    with torch.no_grad():
        for _ in range(iterations):
            v = adjoint(operator(u))
            u = v / v.norm()
        return float(operator(u).norm())


def _same_padding(weight: torch.Tensor, images: torch.Tensor, padding_mode: str) -> int:
    """The padding of a 'same' convolution with ``weight``; circular padding wraps at most once around the images."""
    k1, k2 = weight.shape[-2:]
    if k1 != k2 or k1 % 2 == 0:
        raise ValueError(f"the kernel must be square with an odd size for 'same' padding, got {k1}x{k2}.")
    size = tuple(images.shape[-2:])
    if padding_mode == "circular" and k1 // 2 > min(size):
        raise ValueError(
            f"a circular 'same' convolution with a {k1}x{k1} kernel needs images of at least {k1 // 2}x{k1 // 2} "
            f"pixels (the kernel may be at most twice the image plus one), got images of {size[0]}x{size[1]}; "
            "use a smaller kernel, larger images or padding_mode='zeros'."
        )
    return k1 // 2


def conv2d_same(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, padding_mode: str = "zeros"
) -> torch.Tensor:
    """Stride-1 'same' cross-correlation (PyTorch's ``conv2d``) with zero or circular padding.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(batch, C_in, n1, n2)``.
    weight : torch.Tensor
        Shape ``(C_out, C_in, k, k)`` with ``k`` odd.
    bias : torch.Tensor, optional
        Shape ``(C_out,)``.
    padding_mode : {"zeros", "circular"}
        Boundary handling.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, C_out, n1, n2)``.

    Raises
    ------
    ValueError
        On an unknown ``padding_mode``, a kernel that is not square with an odd size, or (circular padding) a
        kernel wider than twice the image plus one, which would wrap around more than once.
    """
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    p = _same_padding(weight, x, padding_mode)
    if padding_mode == "circular":
        return F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), weight, bias)
    return F.conv2d(x, weight, bias, padding=p)


def conv2d_same_adjoint(z: torch.Tensor, weight: torch.Tensor, *, padding_mode: str = "zeros") -> torch.Tensor:
    r"""The exact adjoint of :func:`conv2d_same` (without bias) for the same padding: ``(batch, C_out, n1, n2)`` in,
    ``(batch, C_in, n1, n2)`` out.

    Zero padding: ``conv_transpose2d`` with the same padding. Circular padding: the circular
    cross-correlation with the flipped, channel-transposed kernel (``conv_transpose2d`` would
    forget the wrap-around).

    Raises
    ------
    ValueError
        As :func:`conv2d_same`.
    """
    check_choice(padding_mode, "padding_mode", PADDING_MODES)
    p = _same_padding(weight, z, padding_mode)
    if padding_mode == "circular":
        flipped = weight.flip(-1, -2).transpose(0, 1)
        return F.conv2d(F.pad(z, (p, p, p, p), mode="circular"), flipped)
    return F.conv_transpose2d(z, weight, padding=p)


def conv_power_iteration(
    weight: torch.Tensor,
    input_size: tuple[int, int],
    *,
    padding_mode: str = "zeros",
    iterations: int = 100,
    seed: int = 0,
) -> float:
    """Power-iteration estimate of a 'same' convolution's norm at ``input_size`` (see :func:`power_iteration`)."""
    n1, n2 = _check_kernel(weight, input_size)
    example = weight.new_zeros(1, weight.shape[1], n1, n2)
    return power_iteration(
        lambda u: conv2d_same(u, weight, padding_mode=padding_mode),
        lambda v: conv2d_same_adjoint(v, weight, padding_mode=padding_mode),
        example,
        iterations=iterations,
        seed=seed,
    )
