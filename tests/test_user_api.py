"""The public API as a new user meets it: the conventions of the API page and the reproductions of issue 14.

Self-contained on purpose: it needs only what ``pip install .`` installs (no pytest, no hypothesis, no repository
files), so ``scripts/user_check.sh`` runs it as a plain script in a clean virtual environment from a directory
outside the repository (``python test_user_api.py`` runs every ``test_*`` function and prints a pytest-style
summary). Under pytest it is an ordinary test module.
"""

from __future__ import annotations

import random
import re
import sys
import traceback

import numpy as np
import torch
from torch import nn

import companion as C


def raises(error: type[Exception], match: str, call) -> None:
    """Like ``pytest.raises(error, match=match)``."""
    try:
        call()
    except error as caught:
        assert re.search(match, str(caught)), f"{error.__name__} message {str(caught)!r} does not match {match!r}"
        return
    raise AssertionError(f"{error.__name__} not raised")


# --- issue 14, item 3: the Jacobian checks run on the package's own sphere-preserving layers ---------------


def test_jacobian_checks_run_on_sphere_layers_and_networks() -> None:
    # they raised "vmap: data-dependent control flow": the layers checked S skew on values in every forward pass
    torch.manual_seed(0)
    x = torch.randn(6, 4, dtype=torch.float64)

    def check(model: nn.Module) -> None:
        assert C.jacobians(model, x).shape == (6, 4, 4)
        assert 0 < C.jacobian_spectral_norm(model, x) < 10
        assert C.jacobian_determinant_error(model, x) >= 0
        assert C.symmetry_error(model, x) >= 0 and C.symplecticity_error(model, x) >= 0

    for method in ("cayley", "exp", "rotation"):
        layer = C.SpherePreservingLayer(4, method=method).double()
        check(layer)
        assert C.norm_drift(layer, x) < 1e-14
    check(C.gradient_sphere_network(4, 4, width=4, depth=2).double())
    for method in ("cayley", "exp"):
        check(C.SpherePreservingLayer(4, method=method, rank=None).double())


# --- issue 14, item 4: a field autograd cannot differentiate is refused -----------------------------------


def test_decompose_refuses_a_field_computed_through_numpy() -> None:
    x = torch.randn(10, 3, dtype=torch.float64)

    def numpy_field(z):
        return torch.from_numpy(np.sin(z.detach().numpy()) + z.detach().numpy() ** 2)

    def half_numpy_field(z):
        return z + torch.from_numpy(np.roll(np.sin(z.detach().numpy()), 1, -1))

    for field in (numpy_field, half_numpy_field):
        raises(ValueError, "not differentiable by autograd", lambda field=field: C.presnov.decompose(field, x))
    torch_field = lambda z: torch.sin(z).roll(1, -1) + z**2  # noqa: E731  # the same field, in torch
    _, _, sphere = C.presnov.decompose(torch_field, x)
    assert float((x * sphere).sum(-1).abs().max()) < 1e-10


# --- issue 14, item 6: tensor steps and field shapes are validated -----------------------------------------


def test_steps_and_field_shapes_are_validated() -> None:
    x = torch.randn(4, 2)
    for h in (torch.tensor(0.0), torch.tensor(float("nan")), torch.tensor(float("inf"))):
        raises(ValueError, "h must be a finite non-zero number", lambda h=h: C.rk_step(lambda z: -z, x, h))
    raises(ValueError, "state's shape", lambda: C.rk_step(lambda z: torch.ones(3, 1, 2), x, 0.1))
    raises(ValueError, "state's shape", lambda: C.FlowLayer(nn.Linear(2, 1))(x))
    assert C.rk_step(lambda z: -z, x, torch.tensor(0.1)).shape == x.shape


# --- conventions (the table on the API page) -------------------------------------------------------------


def test_methods_are_objects_or_names_everywhere() -> None:
    x = torch.randn(3, 4)
    pairs = [
        (lambda m: C.FlowLayer(C.MLPField(4), method=m), "rk4", C.RK4),
        (lambda m: C.resnet(4, 2, width=4, depth=2, method=m).layers[0], "heun", C.HEUN),
        (lambda m: C.GradientLayer(4), "euler", C.EULER),
        (lambda m: C.SpherePreservingLayer(4, method=m), "exp", C.EXP),
        (lambda m: C.gradient_sphere_network(4, 4, width=4, depth=1, method=m).layers[1], "rotation", C.ROTATION),
        (lambda m: C.SymplecticLayer(4, method=m), "stormer_verlet", C.STORMER_VERLET),
        (lambda m: C.VolumePreservingLayer(4, method=m), "stormer_verlet", C.STORMER_VERLET),
        (lambda m: C.MassPreservingLayer(4, method=m), "kutta3", C.KUTTA3),
    ]
    for build, name, method in pairs:
        torch.manual_seed(0)
        by_name = build(name)
        torch.manual_seed(0)
        by_object = build(method)
        assert by_name.method is method and by_object.method is method
        with torch.no_grad():
            assert torch.equal(by_name(x), by_object(x))
    f = lambda z: -z  # noqa: E731
    assert torch.equal(C.rk_step(f, x, 0.1, "rk38"), C.rk_step(f, x, 0.1, C.RK38))
    assert torch.equal(
        C.integrate(f, x, h=0.1, n_steps=2, tableau="midpoint"), C.integrate(f, x, h=0.1, n_steps=2, tableau=C.MIDPOINT)
    )
    assert torch.equal(
        C.presnov.splitting_flow(f, f, x, t=0.5, n_steps=2, tableau="heun"),
        C.presnov.splitting_flow(f, f, x, t=0.5, n_steps=2, tableau=C.HEUN),
    )
    raises(ValueError, "unknown method 'rk5'", lambda: C.FlowLayer(C.MLPField(4), method="rk5"))
    raises(ValueError, "does not keep norm", lambda: C.SpherePreservingLayer(4, method="rk4"))
    raises(TypeError, "method must be a method of companion.integrators", lambda: C.FlowLayer(C.MLPField(4), method=4))


def test_every_layer_shows_and_restores_its_fixed_settings() -> None:
    saved = C.FlowLayer(C.MLPField(2, 4), h=0.1, n_steps=3, method="rk4")
    assert "h=0.1, n_steps=3, method='rk4'" in repr(saved)
    loaded = C.FlowLayer(C.MLPField(2, 4), h=0.7)  # another h, n_steps and method: all restored by loading
    loaded.load_state_dict(saved.state_dict())
    assert loaded.h == 0.1 and loaded.n_steps == 3 and loaded.method is C.RK4
    x = torch.randn(5, 2)
    with torch.no_grad():
        assert torch.equal(loaded(x), saved(x))
    sphere = C.SpherePreservingLayer(3, h=0.3, method="exp", learn_step=True)
    assert "(learned)" in repr(sphere) and "method='exp'" in repr(sphere)
    raises(ValueError, "learn_step=True", lambda: C.SpherePreservingLayer(3).load_state_dict(sphere.state_dict()))


def test_the_fixed_step_stays_exact_in_float64() -> None:
    layer = C.FlowLayer(C.MLPField(2, 3), h=0.1).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(layer(x), x + 0.1 * layer.field(x))  # h is the Python float 0.1, never rounded to float32
    assert isinstance(layer.state_dict()["_extra_state"]["h"], float)


def test_layers_follow_the_dtype_of_their_parameters() -> None:
    for layer in (
        C.FlowLayer(C.MLPField(4), method="rk4"),
        C.GradientLayer(4),
        C.SpherePreservingLayer(4),
        C.SymplecticLayer(4),
        C.MassPreservingLayer(4),
    ):
        assert layer(torch.randn(3, 4)).dtype == torch.float32  # float32 by default
        assert layer.double()(torch.randn(3, 4, dtype=torch.float64)).dtype == torch.float64


def test_flow_layer_takes_any_callable_field_as_rk_step_does() -> None:
    x = torch.randn(5, 2, dtype=torch.float64)
    rotation = lambda z: torch.stack([z[..., 1], -z[..., 0]], -1)  # noqa: E731
    layer = C.FlowLayer(rotation, h=0.2, n_steps=2, method="rk4")
    assert "field=<lambda>" in repr(layer)
    assert torch.equal(layer(x), C.rk_step(rotation, C.rk_step(rotation, x, 0.1, C.RK4), 0.1, C.RK4))
    raises(TypeError, "field must be callable", lambda: C.FlowLayer("rotation"))


def test_time_dependent_fields_as_torchdiffeq_users_write_them() -> None:
    def field(t, x):
        return -2.0 * t * x  # x(t) = x(t0) exp(-(t^2 - t0^2))

    x0 = torch.ones(3, dtype=torch.float64)
    x1 = C.integrate(field, x0, h=0.01, n_steps=100, tableau="rk4", time_dependent=True, t0=0.5)[-1]
    exact = x0 * np.exp(-(1.5**2 - 0.5**2))
    assert float((x1 - exact).abs().max()) < 1e-9
    layer = C.FlowLayer(field, h=1.0, n_steps=100, method="rk4", time_dependent=True, t0=0.5)
    assert float((layer(x0) - x1).abs().max()) < 1e-14
    raises(ValueError, "pass time_dependent=True", lambda: C.rk_step(lambda x: -x, x0, 0.1, t=1.0))


def test_every_submodule_and_public_name_is_reachable_from_the_package() -> None:
    import pkgutil

    for info in pkgutil.iter_modules(C.__path__):
        if info.name.startswith("_"):
            continue
        module = getattr(C, info.name)  # no import statement needed: companion.pde, companion.pde.training, ...
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"companion.{info.name}.__all__ names {name!r}, which it lacks"
    for name in C.__all__:
        assert hasattr(C, name), f"companion.__all__ names {name!r}, which companion lacks"
    for name in (
        "FlowLayer",
        "GradientLayer",
        "SpherePreservingLayer",
        "SymplecticLayer",
        "VolumePreservingLayer",
        "MassPreservingLayer",
        "NonExpansiveLayer",
        "rk_step",
        "RK4",
        "fit",
    ):
        assert name in C.__all__
    assert C.pde.ConvRHS and C.pde.training.make_network and C.pde.data.spectral_solution and C.plotting


def _global_states():
    return random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()


def test_fit_leaves_the_global_generators_alone() -> None:
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    models = [nn.Linear(3, 1) for _ in range(2)]  # building a layer draws from the global generator: do it first
    for model in models:
        model.load_state_dict({"weight": torch.zeros(1, 3), "bias": torch.zeros(1)})
    before = _global_states()
    losses = [C.fit(model, (x, y), epochs=3, batch_size=16, seed=7, progress=False).loss for model in models]
    after = _global_states()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and torch.equal(before[2], after[2])
    assert losses[0] == losses[1]  # the same seed shuffles the same way, whatever the global state


def test_fit_accepts_data_loaders() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.randn(64, 3), torch.randn(64, 1)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    validation = DataLoader(TensorDataset(x, y), batch_size=32)
    history = C.fit(nn.Linear(3, 1), train, validation=validation, epochs=2, progress=False)
    assert len(history.loss) == 2 and len(history.val_loss) == 2
    raises(
        ValueError, "batch_size is set by the DataLoader", lambda: C.fit(nn.Linear(3, 1), train, epochs=1, batch_size=8)
    )
    raises(TypeError, "DataLoader", lambda: C.fit(nn.Linear(3, 1), x, epochs=1))


def main() -> int:
    tests = [(name, value) for name, value in globals().items() if name.startswith("test_") and callable(value)]
    failed = 0
    for name, test in tests:
        try:
            test()
            print(f"PASSED {name}")
        except Exception:  # noqa: BLE001 - report every failure and go on, as pytest does
            failed += 1
            print(f"FAILED {name}\n{traceback.format_exc()}")
    print(f"{len(tests) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
