r"""Swiss-roll classification with 12-layer ResNets and symplectic networks (the authors' teaching notebook).

Authors' set-up, re-implemented from their Part III course notebook ("Vanishing Gradient"):

* data: 8000 points on two spirals :math:`r(\cos\theta, \sin\theta)`, :math:`\theta` in 4000 equispaced
  values of :math:`[0, 4\pi)`, :math:`r` equispaced in :math:`[0, 1]` (class 1) and :math:`[0.2, 1.2]`
  (class 0), no noise, shuffled, embedded as :math:`(x_1, 0, 0, x_2)`; the first half for training, the
  second for testing;
* networks (float32, 12 layers, :math:`h = 1.2/12`): a ResNet :math:`Y\leftarrow Y + hB_j\tanh(A_jY + a_j) + hb_j`
  (``Linear(4, 4)`` twice per layer) and a symplectic "HNN" (symplectic Euler on
  :math:`H_j = \langle 1, \log\cosh(B_jp + b_j)\rangle + \langle 1, \log\cosh(C_jq + c_j)\rangle`, all
  parameters drawn from :math:`N(0, 1)`), each with a ``Linear(4, 1)`` read-out;
* recipe: ``BCEWithLogitsLoss`` plus the weight-smoothness penalty
  :math:`10^{-4}h\sum_j\tfrac12\|\theta_{j+1}-\theta_j\|^2`, Adam with OneCycle (1e-3 up to 5e-2, 40 % warm-up,
  cosine), 100 epochs, batch 125 through a ``DataLoader``;
* metric: test accuracy on the 4000 test points.

The authors' loop also evaluates the test accuracy after every epoch and can record gradients for a
figure; both are left out of the timed training here (which favours the authors' side).

Companion side: :func:`companion.resnet` and a :class:`companion.FlowNetwork` of
:class:`companion.SymplecticLayer` (12 layers each; wider fields, final time 3, the symplectic network on
8-dimensional states behind a linear lift), trained by :func:`companion.fit` (:data:`COMPANION`).

:func:`run` trains each network by each recipe, with the test accuracy at every epoch outside the timed region
(:mod:`benchmarks.authors.time_to_accuracy`). The authors' recipe on companion's network applies the same penalty to
the parameters of consecutive layers; a loss on one logit (the authors' networks) is the binary cross-entropy,
on two logits (companion's) the cross-entropy, which is the same loss on the difference of the logits.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

import companion

from .common import Comparison, Pairs, median_metric
from .time_to_accuracy import AUTHORS, Recipe, Setup, grid_comparison
from .time_to_accuracy import COMPANION as COMPANION_SIDE

POINTS, LAYERS, FINAL_TIME, WIDTH = 8000, 12, 1.2, 4


def swiss_roll_data(seed: int) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``: the authors' spirals, shuffled with ``seed``; labels in {0, 1}."""
    half = POINTS // 2
    theta = torch.linspace(0, 4 * math.pi - 4 * math.pi / half, half)
    inner, outer = torch.linspace(0, 1, half), torch.linspace(0.2, 1.2, half)
    plane = torch.cat(
        [
            torch.stack([inner * torch.cos(theta), inner * torch.sin(theta)], 1),
            torch.stack([outer * torch.cos(theta), outer * torch.sin(theta)], 1),
        ]
    )
    labels = torch.cat([torch.ones(half), torch.zeros(half)]).long()
    order = torch.randperm(POINTS, generator=torch.Generator().manual_seed(seed))
    plane, labels = plane[order], labels[order]
    points = torch.zeros(POINTS, WIDTH)
    points[:, 0], points[:, -1] = plane[:, 0], plane[:, 1]
    return points[:half], labels[:half], points[half:], labels[half:]


# --- the authors' networks -----------------------------------------------------------------------


class AuthorsResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.h = FINAL_TIME / LAYERS
        self.first = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS))
        self.second = nn.ModuleList(nn.Linear(WIDTH, WIDTH) for _ in range(LAYERS))
        self.readout = nn.Linear(WIDTH, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        for a, b in zip(self.first, self.second):
            y = y + self.h * b(torch.tanh(a(y)))
        return self.readout(y).squeeze(1)

    def smoothness(self) -> torch.Tensor:
        total = 0.0
        for layers in (self.first, self.second):
            for j in range(LAYERS - 1):
                total = (
                    total
                    + 0.5 * (layers[j + 1].weight - layers[j].weight).norm() ** 2
                    + 0.5 * (layers[j + 1].bias - layers[j].bias).norm() ** 2
                )
        return total


class AuthorsHamiltonianNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.h = FINAL_TIME / LAYERS
        n = WIDTH // 2
        self.B = nn.Parameter(torch.randn(LAYERS, n, n))
        self.C = nn.Parameter(torch.randn(LAYERS, n, n))
        self.b = nn.Parameter(torch.randn(LAYERS, n))
        self.c = nn.Parameter(torch.randn(LAYERS, n))
        self.readout = nn.Linear(WIDTH, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n = WIDTH // 2
        for j in range(LAYERS):
            q, p = y[:, :n], y[:, n:]
            q = q + self.h * F.linear(torch.tanh(F.linear(p, self.B[j]) + self.b[j]), self.B[j].T)
            p = p - self.h * F.linear(torch.tanh(F.linear(q, self.C[j]) + self.c[j]), self.C[j].T)
            y = torch.cat([q, p], 1)
        return self.readout(y).squeeze(1)

    def smoothness(self) -> torch.Tensor:
        return sum(0.5 * (t[1:] - t[:-1]).flatten(1).norm(dim=1).pow(2).sum() for t in (self.B, self.C, self.b, self.c))


def smoothness_penalty(model: nn.Module) -> torch.Tensor:
    """The authors' penalty h * sum_j |theta_{j+1} - theta_j|^2 / 2 over consecutive layers: their networks' own
    ``smoothness``; for companion's networks the same sum over the parameters of consecutive ``layers``."""
    if hasattr(model, "smoothness"):
        return model.h * model.smoothness()
    layers = list(model.layers)
    total = sum(
        0.5 * (q - p).pow(2).sum()
        for before, after in zip(layers[:-1], layers[1:])
        for p, q in zip(before.parameters(), after.parameters())
    )
    return layers[0].h * total


def binary_loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on one logit (the authors' networks), cross-entropy on two (companion's): the same
    loss, the two-logit one on the difference of the logits."""
    if outputs.ndim == 1:
        return F.binary_cross_entropy_with_logits(outputs, labels.to(outputs.dtype))
    return F.cross_entropy(outputs, labels)


def train_authors(model, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int, after_step=None) -> None:
    """The authors' recipe (any network of this row); ``after_step(model)``, if given, follows every optimiser
    step."""
    loader = DataLoader(Pairs(x, y), batch_size=125, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=5e-2, div_factor=50, total_steps=epochs * len(loader), pct_start=0.4, anneal_strategy="cos"
    )
    for _ in range(epochs):
        for inputs, labels in loader:
            optimizer.zero_grad()
            loss = binary_loss(model(inputs), labels) + 1e-4 * smoothness_penalty(model)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(model)
            schedule.step()


def test_accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """The accuracy of a one-logit (the authors') or two-logit (companion's) network, the same code for both."""
    with torch.no_grad():
        outputs = model(x)
    predicted = (outputs >= 0).long() if outputs.ndim == 1 else outputs.argmax(1)
    return float((predicted == y).float().mean())


# --- the comparison ------------------------------------------------------------------------------

#: Companion's networks and recipes (see the book page): wider fields, a longer time horizon, larger batches.
COMPANION = {
    "ResNet": (
        dict(width=8, hidden=16, final_time=3.0),
        dict(epochs=80, lr=5e-2, batch_size=500, loss="cross_entropy", schedule="onecycle"),
    ),
    "symplectic": (
        dict(width=8, hidden=16, final_time=3.0),
        dict(epochs=50, lr=5e-2, batch_size=500, loss="cross_entropy", schedule="onecycle"),
    ),
}


def companion_network(kind: str, *, width: int, hidden: int, final_time: float) -> nn.Module:
    """Companion's 12-layer network on ``width``-dimensional states (a linear lift from the 4 inputs if wider)."""
    if kind == "ResNet":
        return companion.resnet(WIDTH, 2, width=width, depth=LAYERS, hidden=hidden, T=final_time)
    layers = [companion.SymplecticLayer(width, hidden=hidden, h=final_time / LAYERS) for _ in range(LAYERS)]
    return companion.FlowNetwork(layers, in_dim=WIDTH, width=width, out_dim=2)


def train_companion(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, kind: str, epochs: int, seed: int, after_step=None
) -> None:
    """Companion's recipe for ``kind`` (:data:`COMPANION`) by :func:`companion.fit`; a one-logit network (the
    authors') is trained on the binary cross-entropy, the same loss."""
    recipe = dict(COMPANION[kind][1], epochs=epochs)
    if isinstance(model, (AuthorsResNet, AuthorsHamiltonianNet)):
        recipe["loss"] = lambda model, inputs, labels: binary_loss(model(inputs), labels)
    companion.fit(model, (x, y), seed=seed, progress=False, after_step=after_step, **recipe)


def setup(kind: str, device: torch.device, *, quick: bool = False) -> Setup:
    """The grid of one Swiss-roll row: the authors' and companion's ``kind`` network by both recipes."""
    network, recipe = COMPANION[kind]
    authors_class = AuthorsResNet if kind == "ResNet" else AuthorsHamiltonianNet

    def data(seed: int) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(device) for t in swiss_roll_data(seed))

    return Setup(
        experiment=f"Swiss roll, 12-layer {kind}",
        metrics=["test accuracy"],
        lower_is_better=[False],
        data=data,
        networks={AUTHORS: authors_class, COMPANION_SIDE: lambda: companion_network(kind, **network)},
        recipes={
            AUTHORS: Recipe(train_authors, 2 if quick else 100, -(-POINTS // 2 // 125)),
            COMPANION_SIDE: Recipe(
                partial(train_companion, kind=kind),
                1 if quick else recipe["epochs"],
                -(-POINTS // 2 // recipe["batch_size"]),
            ),
        },
        evaluate=lambda model, data, seed: {"test accuracy": test_accuracy(model, data[2], data[3])},
    )


def run(device: torch.device, seeds: list[int], *, quick: bool = False, log=print) -> list[Comparison]:
    """Both rows (ResNet, symplectic), each network by both recipes on the same data for each seed."""
    rows = []
    for kind in ("ResNet", "symplectic"):
        log(f"  Swiss roll, 12-layer {kind}")
        rows.append(
            grid_comparison(
                setup(kind, device, quick=quick),
                device,
                seeds,
                tolerance="median test accuracy at least the authors' median minus 0.5 points",
                equal_or_better=lambda row: (
                    median_metric(row.companion, "test accuracy") >= median_metric(row.authors, "test accuracy") - 0.005
                ),
                log=log,
            )
        )
    return rows
