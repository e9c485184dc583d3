"""Tests for companion.pde.patches and companion.pde.fitting: sub-step targets, patches, Levenberg-Marquardt,
amplification, train_network; the chapter's figures (companion.pde.plots)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from companion import pde

pytestmark = pytest.mark.usefixtures("one_thread")


def heat_mode(size: int = 16, steps: int = 8, dt: float = 0.01) -> tuple[torch.Tensor, float]:
    """One Fourier mode of the heat equation, u = exp(-alpha |kappa|^2 t) sin(2 pi x) cos(4 pi y): (1, T+1, d, d)."""
    x, y = pde.data.grid_points(size)
    rate = -0.01 * (2 * math.pi) ** 2 * (1 + 4)
    mode = torch.sin(2 * math.pi * x) * torch.cos(4 * math.pi * y)
    frames = [math.exp(rate * j * dt) * mode for j in range(steps + 1)]
    return torch.stack(frames)[None], rate


def test_substep_targets_make_euler_exact_for_a_linear_mode():
    data, rate = heat_mode()
    inputs, targets = pde.patches.substep_targets(data, dt=0.01, substeps=3)
    assert inputs.shape == targets.shape == (8, 16, 16)
    # target = n (exp(rate dt / n) - 1) / dt * U: three Euler sub-steps with it give exp(rate dt) exactly
    symbol = 3 * (math.exp(rate * 0.01 / 3) - 1) / 0.01
    assert torch.allclose(targets, symbol * inputs, atol=1e-9 * abs(symbol))
    assert (1 + 0.01 / 3 * symbol) ** 3 == pytest.approx(math.exp(rate * 0.01), rel=1e-14)


def test_sample_patches_periodic_and_dirichlet():
    grid = torch.arange(25, dtype=torch.float64).reshape(1, 5, 5)
    generator = torch.Generator().manual_seed(0)
    patches, centres = pde.patches.sample_patches(grid, grid, count=50, radius=2, generator=generator)
    assert patches.shape == (50, 5, 5) and torch.equal(patches[:, 2, 2], centres)
    # periodic: every row of a patch is a cyclic run of one grid row
    assert torch.all((patches[:, :, 1] - patches[:, :, 0]) % 5 == 1)
    zeros, _ = pde.patches.sample_patches(
        grid + 1, grid, count=200, radius=2, boundary="dirichlet", generator=generator
    )
    assert (zeros == 0).any() and not (zeros[:, 2, 2] == 0).any()


@pytest.mark.parametrize("equation", ["heat", "fisher"])
def test_patch_field_equals_the_field_on_the_grid(equation):
    model = pde.training.make_network(equation, size=16, seed=3, dtype=torch.float64)
    U = pde.data.initial_conditions(3, size=16, seed=1) + 0.1 * torch.randn(3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        values = model.field(U)
    patches, centres = pde.patches.sample_patches(
        U, values, count=100, radius=4, generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        assert float((pde.patches.patch_field(model.field, patches) - centres).abs().max()) < 1e-12


def test_levenberg_marquardt_solves_rosenbrock():
    def residual(v):
        return torch.stack([10 * (v[1] - v[0] ** 2), 1 - v[0]])

    def jacobian(v):
        return torch.func.jacrev(residual)(v)

    v, losses = pde.fitting.levenberg_marquardt(
        residual, jacobian, torch.tensor([-1.2, 1.0], dtype=torch.float64), iterations=100
    )
    assert torch.allclose(v, torch.ones(2, dtype=torch.float64), atol=1e-8)
    assert all(b <= a for a, b in zip(losses, losses[1:])) and losses[-1] < 1e-20


def test_amplification_of_finite_differences():
    U = pde.data.initial_conditions(2, size=16, seed=0)
    stable = pde.method_of_lines("heat", h=1 / 16, dt=0.24 / 16**2 / 0.01, substeps=1)
    assert pde.fitting.amplification(stable, U, iterations=300) == pytest.approx(1.0, abs=1e-9)  # constant mode
    # past the limit alpha dt / h^2 = 1/4 the checkerboard mode grows: |1 - 8 * 0.3| = 1.4
    unstable = pde.MethodOfLinesNetwork(pde.exact_cnn("heat", h=1 / 16), dt=0.3 / 16**2 / 0.01)
    assert pde.fitting.amplification(unstable, U, iterations=200) == pytest.approx(1.4, rel=1e-3)


def small_problem():
    data = pde.data.generate_trajectories("heat", trajectories=6, steps=12, size=16, seed=5)
    test = pde.data.generate_trajectories("heat", trajectories=4, steps=12, size=16, seed=6)
    return data, test


def test_train_network_learns_heat_from_random_initialisation():
    data, test = small_problem()
    model = pde.training.make_network("heat", size=16, seed=0, dtype=torch.float64)
    fd = pde.method_of_lines("heat", h=1 / 16, dt=model.dt, substeps=3)
    before = pde.rollout_metrics(pde.rollout(model, test[:, 0], 12), test)["relative_error"][-1]
    report = pde.fitting.train_network(
        model, data, patches=3000, iterations=12, restarts=3, restart_iterations=4, seed=1
    )
    after = pde.rollout_metrics(pde.rollout(model, test[:, 0], 12), test)["relative_error"][-1]
    floor = pde.rollout_metrics(pde.rollout(fd, test[:, 0], 12), test)["relative_error"][-1]
    assert before > 0.1 and after < 2 * floor, (float(before), float(after), float(floor))
    assert len(report.restart_errors) == 3 and len(report.validation_errors) == 3
    assert report.validation_errors[report.chosen_stage] == min(report.validation_errors)
    assert all(b <= a for a, b in zip(report.losses, report.losses[1:4]))


def test_train_network_is_reproducible():
    data, _ = small_problem()
    weights = []
    for _ in range(2):
        model = pde.training.make_network("heat", size=16, seed=0)
        pde.fitting.train_network(model, data, patches=500, iterations=3, restarts=2, restart_iterations=1, seed=4)
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert torch.equal(*weights) and weights[0].dtype == torch.float32


def test_train_network_validation_errors():
    data, _ = small_problem()
    model = pde.training.make_network("heat", size=16)
    with pytest.raises(TypeError, match="MethodOfLinesNetwork whose field is a companion.pde.ConvRHS"):
        pde.fitting.train_network(pde.method_of_lines("heat", h=1 / 16, dt=0.01), data)
    with pytest.raises(ValueError, match="at least 6 frames"):
        pde.fitting.train_network(model, data[:, :4])
    with pytest.raises(ValueError, match="built for a 16x16 grid"):
        pde.fitting.train_network(model, pde.data.generate_trajectories("heat", trajectories=2, steps=6, size=8))
    with pytest.raises(ValueError, match="noise level"):
        pde.fitting.train_network(model, data, noise_levels=(1e-3, -1.0))
    with pytest.raises(ValueError, match="noise_damping"):
        pde.fitting.train_network(model, data, noise_damping=1.5)
    with pytest.raises(ValueError, match="at least one level"):
        pde.fitting.train_network(model, data, noise_levels=())
    with pytest.raises(ValueError, match="validation trajectories must be on the training grid"):
        pde.fitting.train_network(model, data, validation=torch.zeros(1, 8, 8, 8))
    with pytest.raises(ValueError, match="points must be at least 2"):
        pde.patches.substep_targets(data, dt=0.1, substeps=3, points=1)
    with pytest.raises(ValueError, match="same shape"):
        pde.patches.sample_patches(data[0], data[0, :2], count=3, radius=1)
    with pytest.raises(ValueError, match="radius"):
        pde.patches.sample_patches(data[0], data[0], count=3, radius=-1)
    with pytest.raises(ValueError, match=r"patches must be \(count, 9, 9\)"):
        pde.patches.patch_field(model.field, torch.zeros(3, 5, 5))
    with pytest.raises(TypeError, match="ConvRHS"):
        pde.patches.patch_field(torch.nn.Identity(), torch.zeros(3, 9, 9))
    with pytest.raises(ValueError, match="iterations"):
        pde.fitting.levenberg_marquardt(lambda v: v, lambda v: torch.eye(2), torch.zeros(2), iterations=0)
    with pytest.raises(TypeError, match="callable"):
        pde.fitting.amplification(3, data[:, 0])


def test_chapter_figures_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion import pde

    for figure in (
        pde.plots.method_of_lines_schematic(),
        pde.plots.error_splitting_schematic(),
        pde.plots.prediction_figure(torch.zeros(8, 8), torch.ones(8, 8), title="t", step=3),
    ):
        assert isinstance(figure, matplotlib.figure.Figure) and figure.axes
        plt.close(figure)
    with pytest.raises(ValueError, match="same shape"):
        pde.plots.prediction_figure(torch.zeros(8, 8), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="2 dimensions"):
        pde.plots.prediction_figure(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))


def test_spectral_coverage_counts_the_excited_frequencies():
    smooth = pde.data.generate_trajectories("heat", trajectories=6, steps=4, size=32, k_max=3, seed=2)
    assert pde.patches.spectral_coverage(smooth) < 0.05  # k <= 3: a few dozen of 1023 frequencies
    noise = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert pde.patches.spectral_coverage(noise) == 1.0
    assert pde.patches.spectral_coverage(torch.ones(1, 2, 8, 8, dtype=torch.float64)) == 0.0  # the mean only
    x, y = pde.data.grid_points(8)
    one_mode = torch.cos(2 * math.pi * (x + 2 * y))[None, None]
    assert pde.patches.spectral_coverage(one_mode) == pytest.approx(2 / 63)  # xi and -xi
    with pytest.raises(ValueError, match="threshold"):
        pde.patches.spectral_coverage(noise, threshold=1.5)
    with pytest.raises(ValueError, match="shape"):
        pde.patches.spectral_coverage(noise[0])


def test_train_network_warns_when_the_data_leave_the_spectrum_unexcited():
    data, _ = small_problem()
    model = pde.training.make_network("heat", size=16, seed=0)
    with pytest.warns(UserWarning, match="excite only"):
        report = pde.fitting.train_network(model, data, patches=200, iterations=1, restarts=1, restart_iterations=1)
    assert report.spectral_coverage == pytest.approx(pde.patches.spectral_coverage(data[:-1]))  # one held out
    rich = data + 0.1 * torch.randn(data.shape, generator=torch.Generator().manual_seed(0), dtype=data.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = pde.fitting.train_network(model, rich, patches=200, iterations=1, restarts=1, restart_iterations=1)
    assert report.spectral_coverage == 1.0
