"""Tests for companion.pde, companion.pde.data, companion.pde.training and scripts/train_pde.py (float64 unless
said)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from companion import empirical_order
from companion.pde import (
    ConvRHS,
    MethodOfLinesNetwork,
    apply_stencil,
    check_time_step,
    exact_cnn,
    impulse_response,
    method_of_lines,
    rhs,
    rollout,
    rollout_metrics,
    stencil,
    unrolled_loss,
)
from companion.pde.data import (
    error_splitting,
    generate_trajectories,
    grid_points,
    initial_conditions,
    spectral_solution,
    stencil_errors,
    trajectories_from,
)
from companion.pde.families import broadband
from companion.pde.fitting import train_network
from companion.pde.training import PRETRAINED, load_network, make_network, pretrained_network, save_network

ROOT = Path(__file__).resolve().parents[1]
SIZES = [16, 32, 64]


@pytest.mark.parametrize("name", ["dx", "dy", "laplacian"])
@pytest.mark.parametrize("order", [2, 4])
def test_stencil_orders_measured(name, order):
    errors = stencil_errors(name, SIZES, order=order)
    assert abs(empirical_order([1 / s for s in SIZES], errors) - order) < 0.1


def test_cross_correlation_sign():
    # conv2d is a cross-correlation: the central d/dx kernel has -1/(2h) above and +1/(2h) below the centre.
    k = stencil("dx", h=0.5)
    assert k[0, 1] == -1.0 and k[2, 1] == 1.0 and k.sum() == 0
    x, y = grid_points(8)
    ramp = 3.0 * x + 0.0 * y  # d/dx = 3 in the interior (rows are x)
    out = apply_stencil(ramp, stencil("dx", h=1 / 8), boundary="dirichlet")
    assert torch.allclose(out[1:-1], torch.full_like(out[1:-1], 3.0), atol=1e-12)
    dy = apply_stencil(3.0 * y, stencil("dy", h=1 / 8), boundary="dirichlet")
    assert torch.allclose(dy[:, 1:-1], torch.full_like(dy[:, 1:-1], 3.0), atol=1e-12)


def test_dirichlet_is_zero_padding():
    U = torch.ones(5, 5, dtype=torch.float64)
    lap = apply_stencil(U, stencil("laplacian"), boundary="dirichlet")
    assert lap[2, 2] == 0 and lap[0, 2] == -1 and lap[0, 0] == -2
    assert apply_stencil(U, stencil("laplacian"), boundary="periodic").abs().max() == 0


@pytest.mark.parametrize("equation", ["heat", "fisher", "burgers", "advection"])
@pytest.mark.parametrize("boundary", ["periodic", "dirichlet"])
@pytest.mark.parametrize("order", [2, 4])
def test_exact_cnn_reproduces_fd_rhs(equation, boundary, order):
    U = initial_conditions(3, size=32, seed=1) + 0.3 * torch.randn(3, 32, 32, dtype=torch.float64)
    for scale in (1.0, 0.01 * 32**2):
        net = exact_cnn(equation, h=1 / 32, boundary=boundary, order=order, scale=scale)
        ref = rhs(equation, U, h=1 / 32, boundary=boundary, order=order)
        with torch.no_grad():
            assert float((net(U) - ref).abs().max() / ref.abs().max()) <= 1e-12


def test_minimal_parameter_counts():
    counts = {eq: sum(p.numel() for p in make_network(eq).parameters()) for eq in ("heat", "fisher", "advection")}
    assert counts == {"heat": 102, "fisher": 511, "advection": 102}
    assert sum(p.numel() for p in exact_cnn("heat", h=0.1).parameters()) == 102
    assert sum(p.numel() for p in exact_cnn("fisher", h=0.1).parameters()) == 511


def test_exact_network_equals_fd_method_of_lines():
    h, dt = 1 / 32, 0.24 / 32**2 / 0.01
    U = initial_conditions(4, size=32, seed=3)
    fd = method_of_lines("fisher", h=h, dt=dt, substeps=3)
    net = MethodOfLinesNetwork(exact_cnn("fisher", h=h), dt=dt, substeps=3)
    assert float((rollout(fd, U, 10) - rollout(net, U, 10)).abs().max()) < 1e-12


def test_impulse_response_is_the_stencil():
    response = impulse_response(exact_cnn("heat", h=1.0, alpha=1.0), size=7)
    expected = torch.zeros(7, 7, dtype=torch.float64)
    expected[2:5, 2:5] = stencil("laplacian")
    assert torch.allclose(response, expected, atol=1e-12)


def test_projected_euler_keeps_norm_float32():
    size = 32
    U0 = initial_conditions(8, size=size, offset=1.0, seed=2, dtype=torch.float32)
    for projected, bound in ((True, 1e-6), (False, None)):
        model = method_of_lines(
            "advection", h=1 / size, dt=1 / size, substeps=2, projected=projected, allow_unstable=True
        )
        traj = rollout(model, U0, 40)
        norms = traj.flatten(-2).norm(dim=-1)
        drift = float(((norms - norms[:, :1]).abs() / norms[:, :1]).max())
        if projected:
            assert traj.dtype == torch.float32 and drift <= bound
        else:
            assert drift > 1e-3  # plain Euler with central differences gains energy


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), substeps=st.integers(1, 3))
def test_projected_step_keeps_norm_for_any_weights(seed, substeps):
    torch.manual_seed(seed)
    field = ConvRHS(3, activation="relu2", kernel_size=3).double()
    model = MethodOfLinesNetwork(field, dt=0.1, substeps=substeps, projected=True)
    U = torch.randn(2, 8, 8, dtype=torch.float64)
    out = model(U)
    assert torch.allclose(out.flatten(-2).norm(dim=-1), U.flatten(-2).norm(dim=-1), rtol=1e-12)


def test_spectral_heat_and_advection_are_exact():
    x, y = grid_points(32)
    u0 = torch.sin(2 * math.pi * 2 * x) * torch.cos(2 * math.pi * 3 * y)
    out = spectral_solution("heat", u0, dt=0.01, steps=5, alpha=0.01)
    exact = math.exp(-0.01 * (2 * math.pi) ** 2 * 13 * 0.05) * u0
    assert float((out[0, -1] - exact).abs().max()) < 1e-12
    adv = spectral_solution("advection", u0, dt=0.01, steps=5, velocity=(1.0, 1.0))
    shifted = torch.sin(2 * math.pi * 2 * (x + 0.05)) * torch.cos(2 * math.pi * 3 * (y + 0.05))
    assert float((adv[0, -1] - shifted).abs().max()) < 1e-12


def test_spectral_fisher_converges_in_time():
    U0 = initial_conditions(2, size=32, seed=4)
    coarse, fine = (spectral_solution("fisher", U0, dt=0.02, steps=5, substeps=n)[:, -1] for n in (1, 2))
    finest = spectral_solution("fisher", U0, dt=0.02, steps=5, substeps=8)[:, -1]
    e1, e2 = float((coarse - finest).abs().max()), float((fine - finest).abs().max())
    assert e2 < 1e-8 and e1 / e2 > 12  # fourth order: ratio about 16


def test_error_splitting_orders():
    # spatial term O(h^2) under grid refinement, temporal term O(dt^2) (Euler local error), exact network term ~0
    spatial = []
    for size in (16, 32):
        data = generate_trajectories("heat", trajectories=2, steps=1, size=size, k_max=1, dt=1e-3, seed=5)
        net = MethodOfLinesNetwork(exact_cnn("heat", h=1 / size), dt=1e-3, substeps=1)
        terms = error_splitting(net, "heat", data[:, 0], data[:, 1], h=1 / size, dt=1e-3, substeps=1)
        spatial.append(terms["spatial"])
        assert terms["network"] < 1e-12
        assert terms["total"] <= terms["spatial"] + terms["temporal"] + terms["network"] + 1e-15
    assert 3.5 < spatial[0] / spatial[1] < 4.5
    temporal = []
    data = generate_trajectories("heat", trajectories=2, steps=1, size=16, k_max=2, seed=5)
    for dt in (0.02, 0.01):
        net = MethodOfLinesNetwork(exact_cnn("heat", h=1 / 16), dt=dt, substeps=1)
        temporal.append(error_splitting(net, "heat", data[:, 0], data[:, 1], h=1 / 16, dt=dt, substeps=1)["temporal"])
    assert 3.5 < temporal[0] / temporal[1] < 4.5


def test_rollout_metrics_and_unrolled_loss():
    truth = torch.zeros(2, 3, 4, 4, dtype=torch.float64) + 2.0
    pred = truth.clone()
    pred[0, 2, 0, 0] += 1.0
    m = rollout_metrics(pred, truth)
    assert m["mse"].tolist() == [0.0, 0.0, 1 / 32]
    assert m["max_error"].tolist() == [0.0, 0.0, 0.5]
    assert m["relative_error"][2] == pytest.approx(0.5 * 1 / 8)
    fd = method_of_lines("heat", h=1 / 16, dt=0.01, substeps=1)
    U0 = initial_conditions(3, size=16, seed=0)
    traj = rollout(fd, U0, 3)
    assert float(unrolled_loss(fd, U0, traj[:, 1:])) < 1e-28


def test_bad_input_errors():
    with pytest.raises(ValueError, match="square"):
        rhs("heat", torch.zeros(4, 5, dtype=torch.float64), h=0.1)
    with pytest.raises(ValueError, match="shape"):
        rhs("heat", torch.zeros(2, 1, 4, 4), h=0.1)
    with pytest.raises(ValueError, match="shape"):
        rhs("heat", torch.zeros(4), h=0.1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        rhs("heat", [[0.0]], h=0.1)
    with pytest.raises(ValueError, match="unknown boundary"):
        apply_stencil(torch.zeros(4, 4), stencil("dx"), boundary="neumann")
    with pytest.raises(ValueError, match="unknown boundary"):
        ConvRHS(2, boundary="reflect")
    with pytest.raises(ValueError, match="unknown equation"):
        rhs("wave", torch.zeros(4, 4), h=0.1)
    with pytest.raises(ValueError, match="unstable time step.*substeps=2"):
        method_of_lines("heat", h=1 / 64, dt=0.48 / 64**2 / 0.01, substeps=1)
    with pytest.raises(ValueError, match="unstable time step"):
        check_time_step("advection", 0.2, h=0.1, projected=True)
    with pytest.raises(ValueError, match="unstable for advection at every step size"):
        check_time_step("advection", 1e-6, h=0.1)
    assert check_time_step("heat", 0.24 / 64**2 / 0.01, h=1 / 64) == pytest.approx(0.24)
    with pytest.raises(ValueError, match="order must be 2 or 4"):
        stencil("dx", order=3)
    with pytest.raises(ValueError, match="odd"):
        ConvRHS(2, kernel_size=4)
    with pytest.raises(ValueError, match="one activation per channel"):
        ConvRHS(2, activation=["relu"])
    with pytest.raises(ValueError, match="hidden >= 8"):
        exact_cnn("burgers", h=0.1, hidden=4)
    with pytest.raises(ValueError, match="same shape"):
        rollout_metrics(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))
    with pytest.raises(ValueError, match="k_min"):
        initial_conditions(2, k_min=3, k_max=2)


def run_script(*args: str) -> list[dict]:
    spec = importlib.util.spec_from_file_location("train_pde", ROOT / "scripts" / "train_pde.py")
    script = importlib.util.module_from_spec(spec)
    sys.modules["train_pde"] = script  # dataclasses look their module up
    spec.loader.exec_module(script)
    return script.main(list(args))


def test_training_script_reduced_size_reproduces_itself(tmp_path):
    networks = ["heat_random", "fisher_random", "advection_projected", "heat_injected"]
    first = run_script("--quick", "--device", "cpu", "--output", str(tmp_path / "a"), "--networks", *networks)
    again = run_script("--quick", "--device", "cpu", "--output", str(tmp_path / "b"), "--networks", *networks[:2])
    assert [r["name"] for r in first] == networks
    for r in first:
        assert math.isfinite(r["relative_error_40"]) and r["train_cpu_seconds"] >= 0 and r["threads"] >= 1
        assert len(r["relative_errors"]) == r["test_steps"] + 1 and r["device"].startswith("cpu")
    for a, b in zip(first, again):
        assert f"{a['relative_error_40']:.2g}" == f"{b['relative_error_40']:.2g}"
    model, meta = load_network(tmp_path / "a" / "advection_projected.pt")
    assert meta["equation"] == "advection" and meta["size"] == 16 and model.projected
    assert meta["seed"] == 7 and "load_average" in meta and meta["noise_levels"] == [1e-2, 1e-3, 1e-4]
    assert rollout(model, initial_conditions(1, size=16, dtype=torch.float32), 2).shape == (1, 3, 16, 16)
    heat, meta = load_network(tmp_path / "a" / "heat_injected.pt", fft=True)
    assert heat.field.fft and meta["injected_noise"] == 0.01 and meta["noise_damping"] == 1.0


def test_a_network_refuses_a_grid_of_another_size():
    net = make_network("heat", size=64)
    with pytest.raises(ValueError, match="built for a 64x64 grid"):
        net(torch.zeros(2, 32, 32))
    path = ROOT / "companion" / "pde" / "weights" / "heat_random.pt"
    if path.is_file():
        shipped, _ = pretrained_network("heat")
        with pytest.raises(ValueError, match="built for a 64x64 grid"):
            rollout(shipped, initial_conditions(1, size=32, dtype=torch.float32), 40)
    assert make_network("heat", size=32)(torch.zeros(2, 32, 32)).shape == (2, 32, 32)


def test_construction_validates_every_option():
    with pytest.raises(ValueError, match="order must be 2 or 4"):
        method_of_lines("heat", h=0.1, dt=0.01, order=3)
    for velocity in ((1.0,), (1.0, float("nan")), (1.0, 2.0, 3.0)):
        with pytest.raises(ValueError, match="velocity must be two finite numbers"):
            method_of_lines("advection", h=0.1, dt=0.01, velocity=velocity)
    with pytest.raises(TypeError, match="velocity must be a pair"):
        method_of_lines("advection", h=0.1, dt=0.01, velocity="ab")
    with pytest.raises(ValueError, match="unknown equation"):
        method_of_lines("wave", h=0.1, dt=0.01)
    with pytest.raises(ValueError, match="velocity"):
        exact_cnn("advection", h=0.1, velocity=(1.0,))
    with pytest.raises(ValueError, match="order must be 2 or 4"):
        exact_cnn("heat", h=0.1, order=6)
    with pytest.raises(ValueError, match="velocity"):
        rhs("advection", torch.zeros(4, 4), h=0.1, velocity=(1.0,))
    with pytest.raises(ValueError, match="^alpha must be a finite number > 0"):
        generate_trajectories("heat", trajectories=2, steps=2, alpha=-1.0)
    with pytest.raises(ValueError, match="^alpha"):
        spectral_solution("heat", torch.zeros(4, 4), dt=0.1, steps=1, alpha=0.0)
    with pytest.raises(ValueError, match="fft=True.*periodic"):
        ConvRHS(2, boundary="dirichlet", fft=True)
    with pytest.raises(ValueError, match="grid_size must be at least kernel_size"):
        ConvRHS(2, grid_size=3)
    with pytest.raises(TypeError, match="projected must be True or False"):
        MethodOfLinesNetwork(ConvRHS(2), dt=0.1, projected="yes")
    with pytest.raises(ValueError, match="takes a grid"):
        ConvRHS(2)(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="unknown variant"):
        pretrained_network("heat", variant="best")
    with pytest.raises(ValueError, match="unknown init"):
        make_network("heat", init="zeros")
    with pytest.raises(ValueError, match="noise must be a number >= 0"):
        make_network("heat", init="exact", noise=-1.0)


@pytest.mark.parametrize("activation", ["relu", "relu2"])
def test_fft_evaluation_equals_the_convolution(activation):
    torch.manual_seed(0)
    direct = ConvRHS(3, activation=activation).double()
    by_fft = ConvRHS(3, activation=activation, fft=True).double()
    by_fft.load_state_dict(direct.state_dict(), strict=False)
    by_fft._configure(activations=direct.activations, boundary="periodic", scale=1.0, grid_size=None, fft=True)
    U = torch.randn(2, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        assert float((by_fft(U) - direct(U)).abs().max() / direct(U).abs().max()) < 1e-13


def test_loading_restores_the_fixed_settings():
    saved = ConvRHS(2, scale=40.96, grid_size=16, activation=["relu", "relu2"])
    other = ConvRHS(2, scale=1.0, boundary="dirichlet")
    other.load_state_dict(saved.state_dict())
    assert (other.scale, other.boundary, other.grid_size, other.activations) == (
        40.96,
        "periodic",
        16,
        ("relu", "relu2"),
    )
    U = torch.randn(2, 16, 16)
    with torch.no_grad():
        assert torch.equal(other(U), saved(U))
    net = MethodOfLinesNetwork(saved, dt=0.1, substeps=3, projected=True)
    copy = MethodOfLinesNetwork(ConvRHS(2), dt=1.0)
    copy.load_state_dict(net.state_dict())
    assert (copy.dt, copy.substeps, copy.projected) == (0.1, 3, True) and "substeps=3" in repr(copy)


def test_pde_networks_under_torch_func():
    torch.manual_seed(1)
    for projected in (False, True):
        model = MethodOfLinesNetwork(
            ConvRHS(2, activation="relu2", kernel_size=3).double(), dt=0.05, substeps=2, projected=projected
        )
        U = torch.randn(3, 6, 6, dtype=torch.float64) + 1.0

        def single(V, model=model):
            return model(V[None])[0]

        jac = torch.func.vmap(torch.func.jacrev(single))(U)
        reference = torch.autograd.functional.jacobian(single, U[1])
        assert jac.shape == (3, 6, 6, 6, 6) and float((jac[1] - reference).abs().max()) < 1e-12


def test_pde_networks_under_torch_compile():
    # one compilation (tens of seconds on two cores): the projected step runs every operation of the plain one
    torch.manual_seed(2)
    torch._dynamo.reset()
    for projected in (True,):
        model = MethodOfLinesNetwork(
            ConvRHS(2, activation=["relu", "relu2"], grid_size=8), dt=0.05, substeps=2, projected=projected
        )
        U = torch.randn(4, 8, 8) + 1.0
        eager = model(U)
        eager.square().sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        compiled = torch.compile(model, backend="inductor", fullgraph=True)
        out = compiled(U)
        out.square().sum().backward()
        assert float((out - eager).abs().max() / eager.abs().max()) < 1e-5
        for p, g in zip(model.parameters(), grads):
            assert float((p.grad - g).abs().max() / (1 + g.abs().max())) < 1e-4


def shipped_test_set(meta: dict) -> torch.Tensor:
    """The held-out test trajectories the training script scored a shipped network on (broadband initial
    conditions for the headline networks, sin-cos ones with k <= k_max for the others)."""
    if meta.get("data_family") == "broadband":
        initial = broadband(
            meta["test_trajectories"],
            size=meta["size"],
            values=tuple(meta["data_values"]),
            bands=[tuple(b) for b in meta["data_bands"]],
            seed=meta["seed"] + 1000,
        )
        return trajectories_from(meta["equation"], initial, steps=meta["test_steps"], alpha=meta["alpha"])
    return generate_trajectories(
        meta["equation"],
        trajectories=meta["test_trajectories"],
        steps=meta["test_steps"],
        size=meta["size"],
        alpha=meta["alpha"],
        k_max=meta["k_max"],
        seed=meta["seed"] + 1000,
    )


@pytest.mark.parametrize("equation, variant", [(eq, v) for eq, vs in PRETRAINED.items() for v in vs])
def test_every_shipped_network_loads_with_its_record(equation, variant):
    model, meta = pretrained_network(equation, variant=variant, dtype=torch.float64, fft=True)
    assert meta["equation"] == equation and meta["size"] == 64 and meta["seed"] == 7
    assert model.projected == (variant == "projected")
    for key in (
        "relative_error_40",
        "fd_relative_error_40",
        "train_cpu_seconds",
        "device",
        "threads",
        "load_average",
        "torch",
        "noise_levels",
    ):
        assert key in meta, f"{equation}_{variant}: metadata lack {key}"
    assert len(meta["relative_errors"]) == meta["test_steps"] + 1
    assert math.isfinite(meta["relative_error_40"])


@pytest.mark.parametrize("variant", ["random", "smooth-k3"])
@pytest.mark.parametrize("equation, target", [("heat", 5e-3), ("fisher", 1e-2)])
def test_headline_networks_reproduce_their_recorded_error_and_meet_the_target(equation, target, variant):
    """The chapter's headline (broadband data) and the networks of the sin-cos k <= 3 data: trained from random
    initialisation, rE(40) on 30 held-out initial conditions of their own training family."""
    model, meta = pretrained_network(equation, variant=variant, dtype=torch.float64, fft=True)
    assert (
        meta["data_family"] == "broadband" if variant == "random" else meta.get("data_family", "sin-cos") == "sin-cos"
    )
    test = shipped_test_set(meta)
    error = float(rollout_metrics(rollout(model, test[:, 0], 40), test)["relative_error"][-1])
    assert f"{error:.2e}" == f"{meta['relative_error_40']:.2e}"
    assert error <= target and meta["init"] == "random"
    assert error < meta["relative_error_40_before"] / 10


def test_user_mistakes_get_clear_errors(tmp_path):
    """What a user meets: settings that contradict the saved model, non-finite data, dtypes that differ."""
    net = make_network("heat", size=16, seed=0)
    for bad, match in (
        (dict(equation="heat", size=32, alpha=0.01), "built for a 16x16 grid"),
        (dict(equation="heat", size=16, alpha=0.02), "scale"),
        (dict(equation="fisher", size=16, alpha=0.01), "not the fisher architecture"),
    ):
        with pytest.raises(ValueError, match=match):
            save_network(tmp_path / "n.pt", net, **bad)
    with pytest.raises(TypeError, match="plain Python values"):
        save_network(tmp_path / "n.pt", net, equation="heat", size=16, alpha=0.01, metadata={"t": torch.ones(1)})
    data = generate_trajectories("heat", trajectories=4, steps=6, size=16, seed=0)
    with pytest.raises(TypeError, match="the grid is torch.float64 and the field's weights are torch.float32"):
        net(data[:, 0])
    with pytest.raises(TypeError, match="sequence of levels"):
        train_network(net, data.float(), noise_levels=1e-3)
    data[0, 3, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_network(net, data, patches=50, iterations=1, restarts=1)
    with pytest.raises(ValueError, match="substeps"):
        make_network("heat", size=16, dt=1.0)
