"""Every public layer and network class, one registry, four checks.

For each entry of ``CASES`` (a constructor with fixed settings, an alternative with other fixed settings and the
same parameter shapes, an input):

1. ``torch.compile`` (inductor, ``fullgraph=True``) agrees with eager to float32 rounding, forward and gradients
   (for every entry in the ``slow`` run, since each compilation costs seconds to a minute on two cores; the
   default run compiles one network that chains the core layers, the reproduction of issue 14's item 2);
2. ``torch.func.vmap(torch.func.jacrev(...))`` runs and gives autograd's Jacobian;
3. a state dict saved by the layer and loaded (through ``torch.save``/``torch.load(weights_only=True)``) into the
   alternative restores the fixed settings: the loaded layer computes what the saved one computed;
4. ``repr`` shows the fixed settings.

``test_registry_covers_every_public_layer_class`` fails when a public ``nn.Module`` class of the package is in no
entry, so a new layer cannot skip these checks.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import companion as C
from companion import pde

pytestmark = pytest.mark.usefixtures("one_thread")


class TimeField(nn.Module):
    """A field ``f(t, x)`` as torchdiffeq users write them."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x)) * torch.cos(t)


def vectors(batch: int = 5, dim: int = 4) -> torch.Tensor:
    return torch.randn(batch, dim, generator=torch.Generator().manual_seed(1))


def grids(batch: int = 2, size: int = 8) -> torch.Tensor:
    return torch.randn(batch, size, size, generator=torch.Generator().manual_seed(2))


def images(batch: int = 2, channels: int = 2, size: int = 6) -> torch.Tensor:
    return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(3))


@dataclass
class Case:
    """A layer built with fixed ``settings`` (and ``other`` settings for the load test), and its input."""

    name: str
    build: Callable[..., nn.Module]
    settings: dict = field(default_factory=dict)
    other: dict = field(default_factory=dict)
    shown: tuple[str, ...] = ()
    inputs: Callable[[], torch.Tensor] = vectors
    known_failures: dict[str, str] = field(default_factory=dict)  # check ("compile", "func", "load", "repr") -> why

    def param(self, check: str):
        reason = self.known_failures.get(check)
        marks = () if reason is None else (pytest.mark.xfail(strict=True, reason=reason),)
        return pytest.param(self, id=self.name, marks=marks)


def sphere_cases() -> list[Case]:
    cases = []
    for rank in (1, 2, None):
        for method, other in (("cayley", "exp"), ("exp", "rotation"), ("rotation", "cayley")):
            cases.append(
                Case(
                    f"SpherePreservingLayer-{method}-rank{rank}",
                    lambda rank=rank, **kw: C.SpherePreservingLayer(4, hidden=6, rank=rank, **kw),
                    dict(h=0.2, method=method, n_steps=2),
                    dict(h=0.7, method=other, n_steps=1),
                    ("h=0.2", "n_steps=2", f"method={method!r}"),
                )
            )
    return cases


CASES = [
    Case(
        "FlowLayer-rk4",
        lambda **kw: C.FlowLayer(C.MLPField(4, 8, activation="sigmoid"), **kw),
        dict(h=0.1, n_steps=2, method="rk4"),
        dict(h=0.3, n_steps=1, method="heun"),
        ("h=0.1", "n_steps=2", "method='rk4'", "activation='sigmoid'"),
    ),
    Case(
        "FlowLayer-learned-step",
        lambda **kw: C.FlowLayer(C.MLPField(4, 8), learn_step=True, **kw),
        dict(h=0.2, method="kutta3"),
        dict(h=0.5, method="midpoint"),
        ("(learned)", "method='kutta3'"),
    ),
    Case(
        "FlowLayer-time-dependent",
        lambda **kw: C.FlowLayer(TimeField(4), time_dependent=True, **kw),
        dict(h=0.2, t0=0.5, method="rk38", n_steps=3),
        dict(h=0.1, t0=1.5, method="rk4", n_steps=1),
        ("t0=0.5", "time_dependent=True", "method='rk38'"),
    ),
    Case(
        "resnet",
        lambda **kw: C.resnet(3, 2, width=4, depth=3, **kw),
        dict(T=0.9, method="rk4"),
        dict(T=2.0, method="euler"),
        ("h=0.3", "method='rk4'"),
        inputs=lambda: vectors(5, 3),
    ),
    Case("mlp", lambda **kw: C.mlp(3, 2, width=4, depth=2, **kw), inputs=lambda: vectors(5, 3)),
    Case(
        "GradientLayer",
        lambda **kw: C.GradientLayer(4, hidden=6, **kw),
        dict(h=0.2, sign=-1, activation="sigmoid", n_steps=2),
        dict(h=0.5, sign=1, activation="tanh", n_steps=1),
        ("h=0.2", "n_steps=2", "sign=-1", "activation='sigmoid'"),
    ),
    *sphere_cases(),
    Case(
        "gradient_sphere_network",
        lambda **kw: C.gradient_sphere_network(3, 2, width=4, depth=2, hidden=5, **kw),
        dict(h=0.3, method="cayley"),
        dict(h=0.1, method="exp"),
        ("h=0.3", "method='cayley'"),
        inputs=lambda: vectors(5, 3),
    ),
    # -- the layers of the structured module (chapter 5) --
    Case(
        "SymplecticLayer",
        lambda **kw: C.SymplecticLayer(4, hidden=6, **kw),
        dict(h=0.1, method="stormer_verlet", activation="sigmoid"),
        dict(h=0.3, method="symplectic_euler"),
        ("h=0.1", "method='stormer_verlet'"),
    ),
    Case(
        "SymplecticLayer-learned-step",
        lambda **kw: C.SymplecticLayer(4, hidden=6, learn_step=True, **kw),
        dict(h=0.1),
        dict(h=0.3),
        ("method='symplectic_euler'",),
    ),
    Case(
        "VolumePreservingLayer",
        lambda **kw: C.VolumePreservingLayer(4, **kw),
        dict(h=0.1, method="stormer_verlet", activation="sigmoid"),
        dict(h=0.3, method="symplectic_euler"),
        ("h=0.1", "method='stormer_verlet'"),
    ),
    Case(
        "MassPreservingLayer",
        lambda **kw: C.MassPreservingLayer(4, hidden=6, **kw),
        dict(h=0.1, n_steps=2, method="rk4", activation="sigmoid"),
        dict(h=0.3, n_steps=1, method="heun"),
        ("h=0.1", "n_steps=2", "method='rk4'"),
    ),
    Case(
        "mass_preserving_network",
        lambda **kw: C.structured.mass_preserving_network((3, 5, 3), layers_per_block=2, hidden=6, **kw),
        dict(h=0.1, method="rk4", learn_step=False),
        dict(h=0.2, method="heun", learn_step=False),
        ("h=0.1", "method='rk4'"),
        inputs=lambda: vectors(5, 3),
    ),
    # -- the Lipschitz module (chapter 6) --
    Case(
        "NonExpansiveLayer",
        lambda **kw: C.NonExpansiveLayer(4, **kw),
        dict(activation="tanh"),
        dict(activation="relu"),
        ("activation='tanh'",),
    ),
    Case(
        "NonExpansiveConvLayer",
        lambda **kw: C.NonExpansiveConvLayer(2, **kw),
        dict(padding_mode="circular"),
        dict(padding_mode="zeros"),
        ("padding_mode='circular'",),
        inputs=images,
    ),
    Case("SwitchingLayer", lambda **kw: C.SwitchingLayer(4, **kw), dict(n_steps=2), dict(n_steps=3), ("n_steps=2",)),
    Case(
        "PlainGradientStep",
        lambda **kw: C.lipschitz.PlainGradientStep(torch.randn(6, 4), torch.randn(6), torch.tensor(0.3), **kw),
        dict(activation="tanh"),
        dict(activation="relu"),
        ("activation='tanh'",),
        inputs=lambda: vectors().requires_grad_(),  # buffers only: the backward pass reaches the input
    ),
    Case(
        "lipschitz_classifier",
        lambda **kw: C.lipschitz_classifier(6, 3, width=4, depth=2, **kw),
        inputs=lambda: vectors(5, 6),
    ),
    Case(
        "lipschitz_classifier-switching",
        lambda **kw: C.lipschitz_classifier(
            6, 3, width=4, depth=2, kind="switching", preprocessing=C.Standardize(0.5, 2.0), **kw
        ),
        inputs=lambda: vectors(5, 6),
    ),
    Case("NormalizedConv2d", lambda **kw: C.lipschitz.NormalizedConv2d(2, 3, **kw), inputs=images),
    Case("ResidualConvLayer", lambda **kw: C.lipschitz.ResidualConvLayer(2, **kw), inputs=images),
    Case(
        "SwitchingConvLayer",
        lambda **kw: C.lipschitz.SwitchingConvLayer(2, **kw),
        dict(n_steps=3, slope=0.3),
        dict(n_steps=2, slope=0.5),
        ("n_steps=3", "slope=0.3"),
        inputs=images,
    ),
    *[
        Case(
            f"cifar_resnet-{regime}",
            lambda regime=regime, **kw: C.lipschitz.cifar_resnet(regime, channels=(2,), layers_per_block=2, **kw),
            inputs=lambda: torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4)),
        )
        for regime in ("unconstrained", "nonexpansive", "switching")
    ],
    # -- the PDE module (chapter 4) --
    Case(
        "ConvRHS",
        lambda **kw: pde.ConvRHS(3, kernel_size=3, **kw),
        dict(boundary="periodic", scale=2.0),
        dict(boundary="dirichlet", scale=1.0),
        ("scale=2.0", "boundary='periodic'"),
        inputs=grids,
    ),
    Case(
        "MethodOfLinesNetwork",
        lambda **kw: pde.MethodOfLinesNetwork(pde.ConvRHS(3, kernel_size=3), **kw),
        dict(dt=0.01, substeps=2),
        dict(dt=0.02, substeps=1),
        ("dt=0.01", "substeps=2"),
        inputs=grids,
    ),
]


def _optional_cases() -> list[Case]:
    """Entries for classes another part of the package is adding (present only when their module has them)."""
    cases = []
    structured = importlib.import_module("companion.structured")
    if hasattr(structured, "PositiveMassPreservingLayer"):
        cases.append(
            Case(
                "PositiveMassPreservingLayer",
                lambda **kw: structured.PositiveMassPreservingLayer(4, hidden=6, **kw),
                dict(h=0.1, n_steps=2, activation="sigmoid"),
                dict(h=0.3, n_steps=1),
                ("h=0.1", "n_steps=2"),
                inputs=lambda: vectors(5, 4).abs(),
            )
        )
        cases.append(
            Case(
                "positive_mass_network",
                lambda **kw: structured.positive_mass_network((3, 5, 3), layers_per_block=2, hidden=6, **kw),
                dict(h=0.1, learn_step=False),
                dict(h=0.2, learn_step=False),
                ("h=0.1",),
                inputs=lambda: vectors(5, 3).abs(),
            )
        )
    return cases


ALL_CASES = CASES + _optional_cases()


def params(check: str) -> list:
    return [case.param(check) for case in ALL_CASES]


def _build(case: Case, settings: dict) -> nn.Module:
    torch.manual_seed(0)
    return case.build(**settings)


def _public_module_classes() -> set[type]:
    classes = set()
    for info in pkgutil.iter_modules(C.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"companion.{info.name}")
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, nn.Module):
                classes.add(value)
    return classes


def test_registry_covers_every_public_layer_class() -> None:
    covered = {type(module) for case in ALL_CASES for module in _build(case, case.settings).modules()}
    missing = sorted(cls.__module__ + "." + cls.__qualname__ for cls in _public_module_classes() - covered)
    assert not missing, f"public nn.Module classes with no entry in tests/test_compile.py CASES: {missing}"


def _close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-5) -> float:
    """Largest difference relative to the size of ``expected`` (float32 rounding of a short computation ~1e-6)."""
    return float((actual - expected).abs().max() / (1.0 + expected.abs().max()))


def _compiled_agrees(model: nn.Module, x: torch.Tensor) -> None:
    torch._dynamo.reset()
    eager = model(x)
    eager.square().sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model, backend="inductor", fullgraph=True)
    out = compiled(x)
    out.square().sum().backward()
    assert _close(out, eager) < 1e-5, f"forward differs by {_close(out, eager):.2e}"
    for p, grad in zip(model.parameters(), eager_grads):
        assert _close(p.grad, grad) < 1e-4, f"gradient differs by {_close(p.grad, grad):.2e}"


def test_compiled_core_layers_agree_with_eager() -> None:
    # issue 14, item 2: inductor fused torch.add(x, k, alpha=h) into an addmm and dropped alpha, so compiled
    # ResNet, gradient and RK4 layers were off by 0.2-1.0
    torch.manual_seed(0)
    chain = nn.Sequential(
        C.resnet(4, 4, width=4, depth=2, hidden=8),
        C.GradientLayer(4, hidden=6, h=0.5),
        C.GradientLayer(4, hidden=6, h=0.5, sign=-1),
        C.FlowLayer(C.MLPField(4, 8), h=0.5, method="rk4"),
        C.SpherePreservingLayer(4, hidden=6),
    )
    _compiled_agrees(chain, vectors(16, 4))


@pytest.mark.slow
@pytest.mark.parametrize("case", params("compile"))
def test_compiled_layer_agrees_with_eager(case: Case) -> None:
    _compiled_agrees(_build(case, case.settings), case.inputs())


@pytest.mark.parametrize("case", params("func"))
def test_jacobians_by_torch_func(case: Case) -> None:
    model = _build(case, case.settings).double()
    x = case.inputs().double()

    def single(z: torch.Tensor) -> torch.Tensor:
        return model(z.unsqueeze(0)).squeeze(0)

    jac = torch.func.vmap(torch.func.jacrev(single))(x)
    reference = torch.autograd.functional.jacobian(single, x[0])
    assert jac.shape[0] == len(x) and (jac[0] - reference).abs().max() < 1e-10


@pytest.mark.parametrize("case", params("load"))
def test_loading_restores_the_fixed_settings(case: Case) -> None:
    saved = _build(case, case.settings)
    buffer = io.BytesIO()
    torch.save(saved.state_dict(), buffer)
    buffer.seek(0)
    loaded = _build(case, case.other)
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    x = case.inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x), saved(x))
    assert repr(loaded) == repr(saved)


@pytest.mark.parametrize("case", params("repr"))
def test_repr_shows_the_fixed_settings(case: Case) -> None:
    text = repr(_build(case, case.settings))
    missing = [item for item in case.shown if item not in text]
    assert not missing, f"repr lacks {missing}:\n{text}"
