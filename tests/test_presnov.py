"""Tests of companion.presnov: the Presnov decomposition, its quadrature and the splitting of flows."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import empirical_order
from companion.presnov import (
    decompose,
    gauss_legendre,
    potential,
    presnov_parts,
    skew_matrix,
    splitting_errors,
    splitting_flow,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def known_potential(x: torch.Tensor) -> torch.Tensor:
    """W(x) = sin(x1) cos(x2) - 0.5 sum log cosh(x_i) + 0.1 (a.x)^2, with W(0) = 0 (uses the first two coordinates)."""
    a = torch.linspace(0.5, -0.5, x.shape[-1], dtype=x.dtype)
    return torch.sin(x[:, 0]) * torch.cos(x[:, 1]) - 0.5 * torch.log(torch.cosh(x)).sum(-1) + 0.1 * (x @ a) ** 2


def known_gradient(x: torch.Tensor) -> torch.Tensor:
    a = torch.linspace(0.5, -0.5, x.shape[-1], dtype=x.dtype)
    g = -0.5 * torch.tanh(x) + 0.2 * (x @ a)[:, None] * a
    g0 = g[:, 0] + torch.cos(x[:, 0]) * torch.cos(x[:, 1])
    g1 = g[:, 1] - torch.sin(x[:, 0]) * torch.sin(x[:, 1])
    return torch.cat([g0[:, None], g1[:, None], g[:, 2:]], -1)


@functools.cache
def _skew_coefficients(dim: int) -> torch.Tensor:
    return torch.randn(dim, dim, dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def known_skew(x: torch.Tensor) -> torch.Tensor:
    """S(x) skew with entries tanh(c_ij . x) + const."""
    c = _skew_coefficients(x.shape[-1]).to(x.dtype)
    entries = torch.tanh(torch.einsum("ijk,bk->bij", c, x)) + 0.3
    upper = torch.triu(entries, diagonal=1)
    return upper - upper.transpose(-1, -2)


def known_field(x: torch.Tensor) -> torch.Tensor:
    return known_gradient(x) + (known_skew(x) @ x.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_uniqueness_recovers_both_parts(dim):
    x = torch.randn(64, dim, generator=torch.Generator().manual_seed(dim), dtype=torch.float64)
    V, gradient, sphere = decompose(known_field, x, nodes=24)
    assert (V - known_potential(x)).abs().max() <= 1e-10
    assert (gradient - known_gradient(x)).abs().max() <= 1e-10
    exact_sphere = (known_skew(x) @ x.unsqueeze(-1)).squeeze(-1)
    assert (sphere - exact_sphere).abs().max() <= 1e-10


def test_potential_vanishes_at_origin():
    x = torch.zeros(3, 4, dtype=torch.float64)
    V, _, sphere = decompose(known_field, x)
    assert V.abs().max() == 0.0
    assert sphere.abs().max() <= 1e-15


def _random_field(dim: int, seed: int, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(8, dim, generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn(8, generator=gen, dtype=torch.float64).to(dtype)
    c = torch.randn(dim, 8, generator=gen, dtype=torch.float64).to(dtype)
    m = torch.randn(dim, dim, generator=gen, dtype=torch.float64).to(dtype)
    return lambda x: torch.tanh(x @ a.T + b) @ c.T + x @ m.T + torch.sin(x).roll(1, -1)


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 3.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_sphere_part_is_orthogonal_to_x(dim, seed, scale, dtype):
    field = _random_field(dim, seed, dtype)
    x = scale * torch.randn(16, dim, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64).to(dtype)
    _, gradient, sphere = decompose(field, x, nodes=128)  # steep tanh ridges need many nodes
    eps = torch.finfo(dtype).eps
    size = (x.norm(dim=-1) * (gradient.norm(dim=-1) + sphere.norm(dim=-1))).max()
    assert (x * sphere).sum(-1).abs().max() <= 500 * eps * float(size)
    assert gradient.dtype == dtype and sphere.shape == x.shape
    if dim == 1:  # in 1-D every field is a gradient
        assert sphere.abs().max() <= 500 * eps * float(size)


def test_quadrature_converges_exponentially():
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    errors = [float((potential(known_field, x, nodes=n) - known_potential(x)).abs().max()) for n in (1, 2, 4, 8, 16)]
    assert all(later < earlier for earlier, later in zip(errors[:4], errors[1:4]))
    assert errors[2] < 1e-2 and errors[3] < 1e-5 and errors[4] < 1e-12


def test_quadrature_is_exact_for_polynomials():
    s, w = gauss_legendre(3)
    assert abs(float(w.sum()) - 1.0) < 1e-15
    assert abs(float((w * s**5).sum()) - 1 / 6) < 1e-15  # degree 2*3-1 = 5 is exact
    cubic = lambda x: x**3 + x.roll(1, -1) ** 2  # noqa: E731  degree 3: 2 nodes are exact
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert (potential(cubic, x, nodes=2) - potential(cubic, x, nodes=20)).abs().max() < 1e-13


def test_skew_matrix_reconstructs_sphere_part():
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    _, _, sphere = decompose(known_field, x)
    S = skew_matrix(x, sphere)
    assert (S + S.transpose(-1, -2)).abs().max() == 0.0
    assert ((S @ x.unsqueeze(-1)).squeeze(-1) - sphere).abs().max() < 1e-12
    assert skew_matrix(torch.zeros(1, 4, dtype=torch.float64), torch.zeros(1, 4, dtype=torch.float64)).abs().max() == 0


def test_splitting_orders():
    x = torch.randn(4, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    steps, errors = splitting_errors(known_field, x, t=1.0, n_steps=(4, 8, 16, 32), substeps=1, reference_steps=400)
    lie, strang = empirical_order(steps, errors["lie_trotter"]), empirical_order(steps, errors["strang"])
    assert abs(lie - 1.0) <= 0.15, lie
    assert abs(strang - 2.0) <= 0.2, strang


def test_splitting_of_commuting_parts_is_exact():
    # x' = -x (gradient of -|x|^2/2) and a constant rotation commute: splitting is exact.
    rotation = lambda x: torch.stack([-x[:, 1], x[:, 0]], -1)  # noqa: E731
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    y = splitting_flow(lambda z: -z, rotation, x, t=1.0, n_steps=2, substeps=200)
    exact = math.exp(-1.0) * torch.tensor(
        [[math.cos(1) * 1.0 - math.sin(1) * 0.5, math.sin(1) * 1.0 + math.cos(1) * 0.5]], dtype=torch.float64
    )
    assert (y - exact.double()).abs().max() < 1e-10


def test_presnov_parts_sum_to_field():
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    gradient_part, sphere_part = presnov_parts(known_field)
    assert (gradient_part(x) + sphere_part(x) - known_field(x)).abs().max() < 1e-13


def test_create_graph_keeps_gradients_to_parameters():
    layer = torch.nn.Linear(3, 3).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    _, gradient, _ = decompose(layer, x, create_graph=True)
    gradient.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    # a linear field's gradient part is its symmetric part
    sym = 0.5 * (layer.weight + layer.weight.T)
    assert (gradient - x @ sym.T - layer.bias).abs().max() < 1e-12


def test_validation_errors():
    x = torch.randn(4, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="field must be callable"):
        decompose(3, x)
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        decompose(known_field, torch.randn(2, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point"):
        decompose(known_field, torch.ones(4, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="nodes must be an int >= 1"):
        decompose(known_field, x, nodes=0)
    with pytest.raises(ValueError, match="field must map"):
        decompose(lambda z: z.sum(-1), x)
    with pytest.raises(ValueError, match="unknown scheme"):
        splitting_flow(known_field, known_field, x, t=1.0, n_steps=2, scheme="yoshida")
    with pytest.raises(ValueError, match="t must be a finite number > 0"):
        splitting_flow(known_field, known_field, x, t=-1.0, n_steps=2)
    with pytest.raises(ValueError, match="same shape"):
        skew_matrix(x, torch.zeros(3, 2, dtype=torch.float64))


# --- issue 14, item 4: a field autograd cannot differentiate gives an error, not a wrong split ----------------


def _numpy_field(z):
    return torch.from_numpy(np.sin(z.detach().numpy()) + z.detach().numpy() ** 2)


def _half_numpy_field(z):
    return z + torch.from_numpy(np.roll(np.sin(z.detach().numpy()), 1, -1))


def _rebuilt_field(z):
    return torch.tensor(np.sin(z.detach().numpy()), requires_grad=True)


@pytest.mark.parametrize(
    "field", [_numpy_field, _half_numpy_field, _rebuilt_field], ids=["numpy", "half-numpy", "rebuilt"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_field_autograd_cannot_differentiate_is_refused(field, dtype):
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype)
    with pytest.raises(ValueError, match="not differentiable by autograd"):
        decompose(field, x)
    gradient_part, _ = presnov_parts(field)
    with pytest.raises(ValueError, match="not differentiable by autograd"):
        gradient_part(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_differentiable_fields_pass_the_check_kinks_and_constants_included(dtype):
    gen = torch.Generator().manual_seed(1)
    A = torch.randn(64, 3, generator=gen, dtype=torch.float64).to(dtype)
    B = (torch.randn(3, 64, generator=gen, dtype=torch.float64) / 8).to(dtype)
    fields = [
        lambda z: torch.relu(z @ A.T) @ B.T,
        lambda z: torch.ones_like(z),
        lambda z: torch.sin(10 * z),
        lambda z: z.abs(),
    ]
    for seed in range(20):
        x = 3 * torch.randn(30, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)
        for field in fields:
            decompose(field, x)
