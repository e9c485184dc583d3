"""Volume preservation in every dimension, odd included: det J = 1 for every parameter value and partition."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import companion
from companion import jacobian_determinant_error
from companion.data import ABC_COEFFICIENTS, abc_field, abc_flow_map, abc_trajectory
from companion.structured import VolumePreservingLayer, enclosed_volume, sphere_mesh

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is faster and steadier

DRAWS = settings(max_examples=150, deadline=None)
seeds = st.integers(0, 2**31 - 1)
steps = st.floats(0.01, 2.0)
scales = st.floats(0.1, 3.0)
methods = st.sampled_from(["symplectic_euler", "stormer_verlet"])


def _randomise(layer: torch.nn.Module, seed: int, scale: float, dtype: torch.dtype) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return layer.to(dtype)


def _points(seed: int, n: int, dim: int, dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    return (2.0 * torch.randn(n, dim, generator=gen, dtype=torch.float64)).to(dtype)


@st.composite
def partitions(draw):
    """A dimension 2..7 and a partition of it into >= 2 contiguous blocks (or None: the default halves)."""
    dim = draw(st.integers(2, 7))
    if draw(st.booleans()):
        return dim, None
    cuts = sorted(draw(st.sets(st.integers(1, dim - 1), min_size=1, max_size=dim - 1)))
    bounds = [0, *cuts, dim]
    return dim, tuple(b - a for a, b in zip(bounds[:-1], bounds[1:]))


@DRAWS
@given(
    seed=seeds,
    partition=partitions(),
    hidden=st.one_of(st.none(), st.integers(1, 6)),
    h=steps,
    scale=scales,
    activation=st.sampled_from(["tanh", "sigmoid", "relu"]),
    method=methods,
)
def test_unit_determinant_in_every_dimension_float64(seed, partition, hidden, h, scale, activation, method):
    dim, blocks = partition
    layer = VolumePreservingLayer(dim, blocks=blocks, hidden=hidden, h=h, activation=activation, method=method)
    layer = _randomise(layer, seed, scale, torch.float64)
    x = _points(seed, 8, dim, torch.float64)
    # det J is 1 exactly; its floating-point evaluation is relative to the size of J's entries.
    size = float(companion.jacobians(layer, x).detach().abs().amax()) ** dim
    assert jacobian_determinant_error(layer, x) <= 1e-12 * max(1.0, size)


@DRAWS
@given(
    seed=seeds,
    partition=partitions(),
    hidden=st.one_of(st.none(), st.integers(1, 6)),
    h=steps,
    scale=scales,
    method=methods,
)
def test_inverse_is_exact_in_every_dimension(seed, partition, hidden, h, scale, method):
    dim, blocks = partition
    layer = _randomise(
        VolumePreservingLayer(dim, blocks=blocks, hidden=hidden, h=h, method=method), seed, scale, torch.float64
    )
    x = _points(seed, 16, dim, torch.float64)
    scale_out = 1.0 + float(layer(x).abs().max())
    assert (layer.inverse(layer(x)) - x).abs().max() <= 1e-12 * scale_out
    assert (layer(layer.inverse(x)) - x).abs().max() <= 1e-12 * scale_out


@settings(max_examples=100, deadline=None)
@given(seed=seeds, dim=st.sampled_from([3, 5]), h=steps, scale=st.floats(0.1, 1.5))
def test_odd_dimension_float32(seed, dim, h, scale):
    layer = _randomise(VolumePreservingLayer(dim, blocks=(1,) * dim, hidden=4, h=h), seed, scale, torch.float32)
    x = _points(seed, 8, dim, torch.float32)
    assert jacobian_determinant_error(layer, x) <= 1e-3


def test_three_dimensional_default_layer_moves_every_coordinate_and_keeps_volume():
    torch.manual_seed(0)
    layer = VolumePreservingLayer(3, h=0.5).double()
    assert layer.blocks == (1, 2)
    x = _points(0, 50, 3, torch.float64)
    assert ((layer(x) - x).abs().amin(0) > 0).all()
    assert jacobian_determinant_error(layer, x) <= 1e-14


def test_two_blocks_reproduce_the_published_even_layer():
    """blocks (n, n) without hidden: x <- x + h s(Av + a), then v <- v + h s(Bx + b)."""
    torch.manual_seed(1)
    layer = VolumePreservingLayer(4, h=0.3).double()
    state = _points(1, 7, 4, torch.float64)
    x, v = state[:, :2], state[:, 2:]
    first, second = layer.updates[0].inner, layer.updates[1].inner
    x = x + 0.3 * torch.tanh(first(v))
    v = v + 0.3 * torch.tanh(second(x))
    assert torch.allclose(layer(state), torch.cat([x, v], -1), rtol=0, atol=1e-15)


def test_verlet_is_second_order_in_the_step():
    """The symmetric composition of the shears converges like h^2 to the exact flow of the split field."""
    torch.manual_seed(2)
    reference = VolumePreservingLayer(3, blocks=(1, 1, 1), hidden=5, h=0.4, method="stormer_verlet").double()
    x = _points(2, 20, 3, torch.float64)

    def run(method: str, substeps: int) -> torch.Tensor:
        layer = VolumePreservingLayer(3, blocks=(1, 1, 1), hidden=5, h=0.4 / substeps, method=method).double()
        with torch.no_grad():
            for mine, theirs in zip(layer.parameters(), reference.parameters()):
                mine.copy_(theirs)
        y = x
        for _ in range(substeps):
            y = layer(y)
        return y

    with torch.no_grad():
        fine = run("stormer_verlet", 256)
        errors = {
            m: [float((run(m, n) - fine).abs().max()) for n in (8, 16)] for m in ("symplectic_euler", "stormer_verlet")
        }
    orders = {m: math.log2(coarse / finer) for m, (coarse, finer) in errors.items()}
    assert 0.85 < orders["symplectic_euler"] < 1.15 and 1.85 < orders["stormer_verlet"] < 2.15


def test_learned_step_gets_a_gradient():
    layer = VolumePreservingLayer(5, blocks=(2, 1, 2), hidden=3, h=0.3, learn_step=True).double()
    x = _points(0, 5, 5, torch.float64)
    layer(x).sum().backward()
    assert layer.raw_h.grad is not None and torch.isfinite(layer.raw_h.grad)
    assert jacobian_determinant_error(layer, x) <= 1e-13


def test_volume_layer_validation():
    with pytest.raises(ValueError, match="dim >= 2"):
        VolumePreservingLayer(1)
    with pytest.raises(ValueError, match="at least two blocks of sizes summing to 3"):
        VolumePreservingLayer(3, blocks=(1, 1))
    with pytest.raises(ValueError, match="at least two blocks"):
        VolumePreservingLayer(3, blocks=(3,))
    with pytest.raises(TypeError, match="blocks must be a sequence"):
        VolumePreservingLayer(3, blocks=3)
    with pytest.raises(ValueError, match="each block size must be an int >= 1"):
        VolumePreservingLayer(3, blocks=(0, 3))
    with pytest.raises(TypeError, match="hidden must be an int"):
        VolumePreservingLayer(3, hidden=2.5)
    with pytest.raises(ValueError, match="does not keep volume"):
        VolumePreservingLayer(3, method="rk4")
    with pytest.raises(ValueError, match="keep volume in every dimension, odd included"):
        VolumePreservingLayer(
            3, method="heun"
        )  # the allowed names are symplectic ones: the message says what they mean
    with pytest.raises(ValueError, match="last dimension 3"):
        VolumePreservingLayer(3)(torch.zeros(2, 4))


# ---------------------------------------------------------------- the ABC flow (data for the chapter)
def test_abc_field_is_divergence_free_and_flow_keeps_volume():
    x = _points(3, 64, 3, torch.float64)
    jac = torch.func.vmap(torch.func.jacrev(abc_field))(x)
    assert jac.diagonal(dim1=-2, dim2=-1).abs().max() == 0  # each component ignores its own coordinate
    flow = lambda y: abc_trajectory(y, dt=0.3, n_steps=1, substeps=40)[-1]  # noqa: E731
    assert jacobian_determinant_error(flow, x[:8]) <= 1e-9  # RK4's volume error is O(h^5) per step


def test_abc_flow_map_samples_and_accuracy():
    x0, x1 = abc_flow_map(100, dt=0.2, seed=4)
    assert x0.shape == x1.shape == (100, 3) and x0.dtype == torch.float64
    assert (x0 >= 0).all() and (x0 < 2 * math.pi).all()
    _, coarse = abc_flow_map(100, dt=0.2, seed=4, substeps=10)
    assert (coarse - x1).abs().max() <= 1e-8
    assert torch.equal(abc_flow_map(100, dt=0.2, seed=4)[0], x0)
    a, b, c = ABC_COEFFICIENTS
    assert torch.allclose(
        abc_field(torch.zeros(1, 3, dtype=torch.float64)), torch.tensor([[c, a, b]], dtype=torch.float64)
    )


def test_abc_validation():
    with pytest.raises(ValueError, match="last dimension 3"):
        abc_field(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="coefficients must be"):
        abc_trajectory(torch.zeros(1, 3), dt=0.1, n_steps=1, coefficients=(1.0, 2.0))
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        abc_flow_map(3, dt=0.0)


# ---------------------------------------------------------------- closed-surface volumes (the 3-D shoelace formula)
def test_sphere_mesh_volume_converges_and_follows_linear_maps():
    import math

    errors = []
    for rings in (12, 24, 48):
        vertices, faces = sphere_mesh(radius=0.5, center=(1.0, -2.0, 3.0), rings=rings, segments=2 * rings)
        assert vertices.shape == (2 + (rings - 1) * 2 * rings, 3) and faces.shape == (2 * (rings - 1) * 2 * rings, 3)
        errors.append(abs(enclosed_volume(vertices, faces) - 4 / 3 * math.pi * 0.125))
    assert errors[0] > 3.5 * errors[1] > 3.5 * 3.5 * errors[2]  # second order in the mesh size
    # A linear map multiplies the enclosed volume of a closed polyhedron by its determinant, exactly.
    vertices, faces = sphere_mesh(rings=8, segments=16)
    matrix = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.5, -1.0], [0.5, 0.0, 1.0]], dtype=torch.float64)
    ratio = enclosed_volume(vertices @ matrix.T, faces) / enclosed_volume(vertices, faces)
    assert abs(ratio - float(torch.linalg.det(matrix))) <= 1e-12
    # A volume-preserving layer keeps it up to the mesh resolution.
    torch.manual_seed(0)
    layer = VolumePreservingLayer(3, blocks=(1, 1, 1), hidden=8, h=0.3).double()
    vertices, faces = sphere_mesh(radius=0.2, rings=48, segments=96)
    with torch.no_grad():
        moved = layer(vertices)
    assert abs(enclosed_volume(moved, faces) / enclosed_volume(vertices, faces) - 1) <= 1e-3


def test_volume_helpers_validation():
    with pytest.raises(ValueError, match="rings >= 2 and segments >= 3"):
        sphere_mesh(rings=1)
    with pytest.raises(ValueError, match="center must be three numbers"):
        sphere_mesh(center=(0.0, 0.0))
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        sphere_mesh(radius=0.0)
    vertices, faces = sphere_mesh(rings=4, segments=6)
    with pytest.raises(TypeError, match="faces must hold integer indices"):
        enclosed_volume(vertices, faces.double())
    with pytest.raises(ValueError, match="faces index vertices"):
        enclosed_volume(vertices, faces + len(vertices))
    with pytest.raises(ValueError, match="last dimension 3"):
        enclosed_volume(vertices[:, :2], faces)


def test_shear_schematic_keeps_the_shaded_area():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from companion.structured.figures import shear_schematic

    figure = shear_schematic()
    titles = [ax.get_title() for ax in figure.axes]
    areas = {title.split("shaded area ")[1] for title in titles}
    assert len(titles) == 3 and areas == {"0.0278"}  # (1/6)^2 in every panel
    matplotlib.pyplot.close(figure)
