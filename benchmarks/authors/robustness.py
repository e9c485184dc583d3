r"""Adversarial robustness of a non-expansive network against l2-PGD, at the scale of scikit-learn's 8x8 digits.

Authors' set-up, re-implemented from their Part III course notebook (``adversarial_robustness.ipynb``,
FashionMNIST 28x28 there, the 8x8 digits here so that it runs in seconds on a CPU):

* data: :func:`companion.digits` (1,258 training and 539 test images, pixels in [0, 1]) as ``1x8x8`` images;
* network: a 1x1 lifting convolution to 8 channels and 2x2 max-pooling, 4 non-expansive blocks
  :math:`x\leftarrow x - \tfrac{T/4}{S}A^\top\mathrm{ReLU}(Ax+b)` (``A`` a 3x3 convolution, ``A^T`` its
  transposed convolution, :math:`T = 1`, :math:`S` sub-steps), 2x2 max-pooling and a linear read-out;
  :math:`S_i = \lceil (T/4)/(2/\|A_i\|^2)\rceil` with :math:`\|A_i\|` from one warm-started power iteration
  after every optimiser step (100 iterations at initialisation);
* recipe: ``multi_margin_loss`` (margin 1), Adam (lr 1e-2, weight decay 1e-5), OneCycle from 1e-4 to 1e-2
  and back (50 % warm-up, cosine), gradient norm clipped at 1, 30 epochs, batch 512 through a ``DataLoader``;
* attack and metric: their l2-PGD (100 steps of size :math:`0.025\varepsilon` along the normalised gradient of
  the cross-entropy, from zero, projected on the :math:`\varepsilon`-ball, images clipped to [0, 1]), accuracy on
  the attacked test images; the same attack, code and radius are used for both sides.

Companion side: :func:`companion.lipschitz_classifier` (the 1-Lipschitz dense network of the book's chapter)
trained by :func:`companion.fit` with :func:`companion.hinge_loss`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

import companion

from .common import (
    Comparison,
    Measurement,
    Pairs,
    compare,
    median_metric,
    parameter_count,
    timed,
    timed_authors_training,
)

CHANNELS, BLOCKS, FINAL_TIME, EPSILON = 8, 4, 1.0, 0.5


# --- the authors' network ------------------------------------------------------------------------


def _norm_estimate(conv: nn.Conv2d, u: torch.Tensor, iterations: int) -> tuple[float, torch.Tensor]:
    """Power iteration u <- A^T A u / |A^T A u| for the zero-padded 3x3 convolution; returns (|A|, u)."""
    with torch.no_grad():
        for _ in range(iterations):
            w = F.conv_transpose2d(F.conv2d(u, conv.weight, padding=1), conv.weight, padding=1)
            sigma_squared = float(w.norm())
            u = w / w.norm()
    return math.sqrt(sigma_squared), u


class _NonExpansiveBlock(nn.Module):
    def __init__(self, step: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1)
        self.step = step
        self.sub_steps = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.sub_steps):
            x = x - self.step / self.sub_steps * F.conv_transpose2d(
                torch.relu(self.conv(x)), self.conv.weight, padding=1
            )
        return x


class AuthorsNonExpansiveNet(nn.Module):
    def __init__(self, image_size: int = 8) -> None:
        super().__init__()
        self.lift = nn.Sequential(nn.Conv2d(1, CHANNELS, 1), nn.MaxPool2d(2))
        self.blocks = nn.ModuleList(_NonExpansiveBlock(FINAL_TIME / BLOCKS) for _ in range(BLOCKS))
        self.pool = nn.MaxPool2d(2)
        self.readout = nn.Linear(CHANNELS * (image_size // 4) ** 2, 10)
        self.inner_size = image_size // 2
        self.vectors = []
        for block in self.blocks:
            _, u = _norm_estimate(block.conv, torch.randn(1, CHANNELS, self.inner_size, self.inner_size), 100)
            self.vectors.append(u)

    def update_sub_steps(self) -> None:
        for i, block in enumerate(self.blocks):
            norm, self.vectors[i] = _norm_estimate(block.conv, self.vectors[i].to(block.conv.weight.device), 1)
            block.sub_steps = math.ceil(block.step / (2 / norm**2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lift(x)
        for block in self.blocks:
            z = block(z)
        return self.readout(self.pool(z).flatten(1))


def train_authors(model: AuthorsNonExpansiveNet, x: torch.Tensor, y: torch.Tensor, *, epochs: int, seed: int) -> None:
    loader = DataLoader(Pairs(x, y), batch_size=512, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=1e-2, div_factor=100, total_steps=epochs * len(loader), pct_start=0.5, anneal_strategy="cos"
    )
    model.train()
    for _ in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.multi_margin_loss(model(images), labels, margin=1.0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            schedule.step()
            model.update_sub_steps()
    model.eval()


# --- the attack (the authors', used on both sides) -------------------------------------------------


def l2_pgd(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epsilon: float, steps: int = 100
) -> torch.Tensor:
    """The authors' l2-PGD: normalised-gradient ascent on the cross-entropy from zero, projected on the ball."""
    if epsilon == 0:
        return images
    step = 0.025 * epsilon
    delta = torch.zeros_like(images, requires_grad=True)
    flat = (len(images),) + (1,) * (images.ndim - 1)
    for _ in range(steps):
        loss = F.cross_entropy(model(torch.clamp(images + delta, 0, 1)), labels)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta += step * grad / grad.flatten(1).norm(dim=1).view(flat)
            delta *= torch.clamp(epsilon / delta.flatten(1).norm(dim=1).view(flat), max=1.0)
    return torch.clamp(images + delta.detach(), 0, 1)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, steps: int) -> dict[str, float]:
    def accuracy(inputs: torch.Tensor) -> float:
        with torch.no_grad():
            return float((model(inputs).argmax(1) == labels).float().mean())

    return {
        "clean accuracy": accuracy(images),
        f"PGD-{steps} accuracy, eps {EPSILON}": accuracy(l2_pgd(model, images, labels, epsilon=EPSILON, steps=steps)),
    }


# --- the comparison ------------------------------------------------------------------------------

#: Companion's network and recipe (see the book page).
COMPANION_NETWORK = dict(width=64, depth=6)
COMPANION_RECIPE = dict(epochs=3, lr=3e-2, batch_size=128, schedule="onecycle")


def run(device: torch.device, seeds: list[int], *, quick: bool = False, log=print) -> Comparison:
    (x_train, y_train), (x_test, y_test) = companion.digits(seed=0)
    x_train, y_train, x_test, y_test = (t.to(device) for t in (x_train, y_train, x_test, y_test))
    images_train, images_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    steps = 5 if quick else 100
    authors_epochs = 2 if quick else 30
    companion_epochs = 1 if quick else COMPANION_RECIPE["epochs"]

    def authors(seed: int, warm: bool = False) -> Measurement | None:
        model, seconds, cpu = timed_authors_training(
            AuthorsNonExpansiveNet,
            train_authors,
            images_train,
            y_train,
            seed=seed,
            epochs=1 if warm else authors_epochs,
            device=device,
        )
        if warm:
            return None
        metrics, eval_seconds, _ = timed(lambda: evaluate(model, images_test, y_test, steps=steps), device)
        return Measurement(
            metrics,
            seconds,
            cpu,
            eval_seconds,
            parameters=parameter_count(model),
            extra={"sub-steps": float(sum(b.sub_steps for b in model.blocks))},
        )

    def companion_side(seed: int, warm: bool = False) -> Measurement | None:
        companion.seed_everything(seed)
        model = companion.lipschitz_classifier(64, 10, **COMPANION_NETWORK).to(device)
        recipe = dict(COMPANION_RECIPE, epochs=1 if warm else companion_epochs)
        _, seconds, cpu = timed(
            lambda: companion.fit(
                model, (x_train, y_train), loss=companion.hinge_loss(1.0), seed=seed, progress=False, **recipe
            ),
            device,
        )
        if warm:
            return None
        metrics, eval_seconds, _ = timed(lambda: evaluate(model, x_test, y_test, steps=steps), device)
        return Measurement(metrics, seconds, cpu, eval_seconds, parameters=parameter_count(model))

    authors_runs, companion_runs = compare(authors, companion_side, seeds, log=log)
    robust = f"PGD-{steps} accuracy, eps {EPSILON}"

    def equal_or_better(row: Comparison) -> bool:
        clean = median_metric(row.companion, "clean accuracy") >= median_metric(row.authors, "clean accuracy") - 0.01
        return clean and median_metric(row.companion, robust) >= median_metric(row.authors, robust)

    optimiser_steps = authors_epochs * -(-len(x_train) // 512)
    compared = (
        f"each side's recipe (different networks: {authors_runs[0].parameters:,} vs "
        f"{companion_runs[0].parameters:,} parameters; the authors' recipe makes {optimiser_steps} optimiser steps here)"
    )
    return Comparison(
        experiment="digits, non-expansive net vs l2-PGD",
        metrics=["clean accuracy", robust],
        lower_is_better=[False, False],
        authors=authors_runs,
        companion=companion_runs,
        tolerance="median clean accuracy at least the authors' minus 1 point, median robust accuracy at least the "
        "authors'",
        equal_or_better=equal_or_better,
        compared=compared,
    )
