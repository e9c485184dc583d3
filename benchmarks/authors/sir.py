r"""SIR time-1 flow map with a mass-preserving network (Celledoni et al. 2023, "Mass Preserving Networks").

Authors' set-up, re-implemented from their description and notebook:

* data: 1000 initial conditions ``rand(3)`` normalised by their sum (NumPy seed 0), the time-1 map of
  :math:`\dot S=-R_0SI,\ \dot I=R_0SI-I,\ \dot R=I` (:math:`R_0=1`) by RK45 with ``rtol = atol = 1e-11``,
  the first 900 for training, the last 100 for testing;
* network: Lift(10)-Block, Proj(10,10)-Block, Lift(15)-Block, Proj(3); a block is 3 Euler layers
  :math:`x\leftarrow x + h_i\,\mathbf 1^\top(M-M^\top)` with the :math:`n(n-1)/2` upper-triangular
  entries of :math:`M` given by :math:`\mathrm{ReLU}(B\,\mathrm{ReLU}(Ax+a))` (hidden width 50, no bias in
  :math:`A`, :math:`a\sim N(0,1)`), signed steps :math:`h_i\sim N(0,1)`; 35,544 parameters;
* recipe: float64, MSE, Adam (lr 0.01, weight decay 1e-5), StepLR(60, 0.1) per epoch, 150 epochs, batch 32
  drawn by a ``DataLoader`` over a map-style dataset (shuffled);
* metric: test MSE, over the whole test set and over one shuffled test batch of 32 (the published
  3.35e-6 is the latter).

Companion side: :func:`companion.structured.mass_preserving_network` with the same widths (its field
parametrises all :math:`d^2` entries of :math:`A_\theta(x)`) trained by :func:`companion.fit`
(:data:`COMPANION_RECIPE`).

:func:`run` trains each network by each recipe (the authors' network by companion's recipe, companion's by the
authors' recipe too), with the test metrics at every epoch outside the timed region
(:mod:`benchmarks.authors.time_to_accuracy`).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import nn
from torch.utils.data import DataLoader

import companion
from companion.structured import mass_preserving_network

from .common import Comparison, Pairs, median_metric
from .time_to_accuracy import AUTHORS, COMPANION, Recipe, Setup, grid_comparison

WIDTHS = (3, 10, 10, 15)
LAYERS_PER_BLOCK, HIDDEN = 3, 50


# --- data ----------------------------------------------------------------------------------------


def sir_data(count: int = 1000, *, train_fraction: float = 0.9) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)`` in float64, exactly as the authors generate them."""
    rng = np.random.RandomState(0)
    starts = rng.rand(count, 3)
    starts = starts / starts.sum(axis=1, keepdims=True)

    def field(t, y):
        s, i, _ = y
        return [-s * i, s * i - i, i]

    ends = np.stack(
        [
            solve_ivp(field, (0.0, 1.0), x0, method="RK45", t_eval=[0.0, 1.0], rtol=1e-11, atol=1e-11).y[:, -1]
            for x0 in starts
        ]
    )
    split = int(train_fraction * count)
    tensors = [torch.from_numpy(a) for a in (starts[:split], ends[:split], starts[split:], ends[split:])]
    return tuple(t.to(torch.float64) for t in tensors)


# --- the authors' network ------------------------------------------------------------------------


class _SkewBlock(nn.Module):
    """``layers`` Euler steps of x' = 1^T (M(x) - M(x)^T), M's upper triangle from ReLU(B ReLU(Ax + a))."""

    def __init__(self, width: int, layers: int, hidden: int) -> None:
        super().__init__()
        self.width = width
        pairs = width * (width - 1) // 2
        self.inner = nn.ModuleList(nn.Linear(width, hidden, bias=False) for _ in range(layers))
        self.outer = nn.ModuleList(nn.Linear(hidden, pairs) for _ in range(layers))
        self.offsets = nn.ParameterList(nn.Parameter(torch.randn(hidden)) for _ in range(layers))
        self.steps = nn.Parameter(torch.randn(layers))
        self.register_buffer("rows", torch.triu_indices(width, width, 1)[0], persistent=False)
        self.register_buffer("cols", torch.triu_indices(width, width, 1)[1], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(self.width, dtype=x.dtype, device=x.device)
        for k in range(len(self.inner)):
            entries = torch.relu(self.outer[k](torch.relu(self.inner[k](x) + self.offsets[k])))
            upper = x.new_zeros(len(x), self.width, self.width)
            upper[:, self.rows, self.cols] = entries
            skew = upper - upper.transpose(1, 2)
            x = x + self.steps[k] * (ones @ skew)
        return x


class _Lift(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        pad = torch.zeros(x.shape[1], self.width - x.shape[1], dtype=x.dtype, device=x.device)
        return x @ torch.cat([eye, pad], dim=1)


class _Projection(nn.Module):
    def __init__(self, in_width: int, width: int) -> None:
        super().__init__()
        self.in_width, self.width = in_width, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(self.width, dtype=x.dtype, device=x.device)
        pad = torch.zeros(self.in_width - self.width, self.width, dtype=x.dtype, device=x.device)
        dropped = x[:, self.width :].sum(1, keepdim=True) / self.width
        return x @ torch.cat([eye, pad], dim=0) + dropped


def authors_network() -> nn.Sequential:
    """The authors' network, initialised as in their notebook: with float64 as the default dtype (so the random
    initial values are drawn in float64; returns a float64 network)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _authors_network()
    finally:
        torch.set_default_dtype(previous)


def _authors_network() -> nn.Sequential:
    modules: list[nn.Module] = []
    for previous, width in zip(WIDTHS[:-1], WIDTHS[1:]):
        modules.append(_Lift(width) if width > previous else _Projection(previous, width))
        modules.append(_SkewBlock(width, LAYERS_PER_BLOCK, HIDDEN))
    modules.append(_Projection(WIDTHS[-1], 3))
    return nn.Sequential(*modules)


def train_authors(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int, after_step=None
) -> None:
    """The authors' recipe; ``after_step(model)``, if given, is called after every optimiser step."""
    loader = DataLoader(Pairs(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=60, gamma=0.1)
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(inputs), targets)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(model)
        schedule.step()


# --- evaluation ----------------------------------------------------------------------------------


def evaluate(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor, batch: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        prediction = model(x_test)
    squared = (prediction - y_test) ** 2
    return {
        "test MSE (all 100)": float(squared.mean()),
        "test MSE (one batch of 32)": float(squared[batch].mean()),
        "max sum drift": float((prediction.sum(1) - x_test.sum(1)).abs().max()),
    }


# --- companion's network and recipe --------------------------------------------------------------

#: Companion's recipe (see the book page): fewer epochs, larger batches, a step decay.
COMPANION_RECIPE = dict(epochs=40, lr=1e-2, batch_size=64, schedule="step", step_size=25, gamma=0.1)


def companion_network() -> nn.Module:
    """Companion's mass-preserving network with the authors' widths, in float64."""
    return mass_preserving_network(
        (*WIDTHS, 3), layers_per_block=LAYERS_PER_BLOCK, hidden=HIDDEN, activation="relu"
    ).double()


def train_companion(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int, after_step=None
) -> None:
    """Companion's recipe: :func:`companion.fit` with :data:`COMPANION_RECIPE` (any network of this row)."""
    recipe = dict(COMPANION_RECIPE, epochs=epochs)
    companion.fit(model, (x, y), seed=seed, progress=False, after_step=after_step, **recipe)


# --- the comparison ------------------------------------------------------------------------------


def run(device: torch.device, seeds: list[int], *, quick: bool = False, log=print) -> Comparison:
    """Both networks by both recipes on the same data for each seed (``quick``: a few epochs, for the tests)."""
    data = tuple(t.to(device) for t in sir_data())
    train_size = len(data[0])

    def evaluate_on_test(model: nn.Module, data: tuple[torch.Tensor, ...], seed: int) -> dict[str, float]:
        batch = torch.randperm(len(data[2]), generator=torch.Generator().manual_seed(seed))[:32]
        return evaluate(model, data[2], data[3], batch)

    setup = Setup(
        experiment="SIR time-1 map, mass-preserving net",
        metrics=["test MSE (all 100)", "test MSE (one batch of 32)", "max sum drift"],
        lower_is_better=[True, True, True],
        data=lambda seed: data,
        networks={AUTHORS: authors_network, COMPANION: companion_network},
        recipes={
            AUTHORS: Recipe(train_authors, 3 if quick else 150, -(-train_size // 32)),
            COMPANION: Recipe(
                train_companion,
                2 if quick else COMPANION_RECIPE["epochs"],
                -(-train_size // COMPANION_RECIPE["batch_size"]),
            ),
        },
        evaluate=evaluate_on_test,
    )
    return grid_comparison(
        setup,
        device,
        seeds,
        tolerance="median test MSE over all 100 test points at most the authors' median",
        equal_or_better=lambda row: (
            median_metric(row.companion, "test MSE (all 100)") <= median_metric(row.authors, "test MSE (all 100)")
        ),
        log=log,
    )
