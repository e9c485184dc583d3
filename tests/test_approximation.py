"""companion.presnov.approximation: Presnov sizes, gradient-only networks, depth studies, gradient norms by layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import companion
from companion.presnov.approximation import (
    DepthStudy,
    depth_study,
    gradient_network,
    gradient_norms_by_layer,
    presnov_sizes,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def rotation(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([-x[:, 1], x[:, 0]], -1)


def test_presnov_sizes_of_pure_parts_and_a_sum() -> None:
    x = torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gradient, sphere = presnov_sizes(lambda y: -y, x)
    assert sphere < 1e-12 and abs(gradient - float(x.pow(2).sum(-1).mean().sqrt())) < 1e-12
    gradient, sphere = presnov_sizes(rotation, x)
    assert gradient < 1e-12 and abs(sphere - float(x.pow(2).sum(-1).mean().sqrt())) < 1e-12
    gradient, sphere = presnov_sizes(lambda y: -y + 2 * rotation(y), x)
    assert abs(sphere / gradient - 2) < 1e-10


def test_presnov_sizes_validates() -> None:
    with pytest.raises(TypeError, match="field must be callable"):
        presnov_sizes(3, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        presnov_sizes(rotation, torch.zeros(2))


def test_gradient_network_is_a_stack_of_gradient_layers_without_lift() -> None:
    net = gradient_network(3, depth=4, hidden=5, h=0.2).double()
    assert len(net.layers) == 4 and all(isinstance(layer, companion.GradientLayer) for layer in net.layers)
    x = torch.randn(16, 3, dtype=torch.float64)
    assert net(x).shape == (16, 3)
    assert sum(p.numel() for p in net.parameters()) == 4 * (3 * 5 + 5 + 5)
    for layer in net.layers:
        assert companion.symmetry_error(layer, x) < 1e-12
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        gradient_network(3, depth=0)


def test_depth_study_shapes_counts_and_reproducibility() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 2, generator=generator)
    y = x + 0.1 * rotation(x)
    builders = {
        "gradient": lambda depth: gradient_network(2, depth=2 * depth, hidden=4, h=0.1),
        "gradient + sphere": lambda depth: companion.gradient_sphere_network(
            2, 2, width=2, depth=depth, hidden=4, h=0.1
        ),
    }
    kwargs = dict(depths=(1, 2), seeds=(0, 1), epochs=2, batch_size=32)
    first = depth_study(builders, (x, y), (x, y), **kwargs)
    again = depth_study(builders, (x, y), (x, y), **kwargs)
    assert isinstance(first, DepthStudy) and first.depths == (1, 2) and first.seeds == (0, 1)
    for family in builders:
        assert first.errors[family].shape == (2, 2)
        assert torch.equal(first.errors[family], again.errors[family])
    assert first.parameters["gradient"] == [2 * (2 * 4 + 4 + 4), 4 * (2 * 4 + 4 + 4)]
    rows = first.summary()
    assert len(rows) == 4 and all(row[4] <= row[3] <= row[5] for row in rows)


def test_depth_study_validates() -> None:
    data = (torch.zeros(4, 2), torch.zeros(4, 2))
    build = {"g": lambda depth: gradient_network(2, depth=depth)}
    with pytest.raises(ValueError, match="at least one family"):
        depth_study({}, data, data, depths=(1,), seeds=(0,), epochs=1)
    with pytest.raises(TypeError, match="builders\\['g'\\] must be callable"):
        depth_study({"g": 1}, data, data, depths=(1,), seeds=(0,), epochs=1)
    with pytest.raises(ValueError, match="must not be empty"):
        depth_study(build, data, data, depths=(), seeds=(0,), epochs=1)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        depth_study(build, data, data, depths=(1,), seeds=(0,), epochs=0)


def test_gradient_norms_by_layer_sees_vanishing_gradients() -> None:
    torch.manual_seed(0)
    deep = companion.mlp(4, 2, width=4, depth=12)
    linear = [m for m in deep if isinstance(m, nn.Linear)]
    x, labels = torch.randn(256, 4), torch.randint(0, 2, (256,))
    norms = gradient_norms_by_layer(linear, deep, x, labels)
    assert len(norms) == len(linear) and norms[0] < 1e-2 * norms[-1]
    assert all(p.grad is None for p in deep.parameters())
    with pytest.raises(ValueError, match="unknown loss"):
        gradient_norms_by_layer(linear, deep, x, labels, loss="hinge")
    with pytest.raises(ValueError, match="every layer must have parameters"):
        gradient_norms_by_layer([nn.Tanh()], deep, x, labels)
