"""Where the training time goes: the cost of one optimiser step of each side's network, and how many steps.

A row's training time is (optimiser steps) x (cost of one step). This table measures the cost of one step
(forward and backward pass, and the Adam update) for the networks of the SIR and Swiss-roll rows at the batch
size of their recipes, with the Adam update both as PyTorch's plain Adam (the authors' code: on a CPU it updates
the parameter tensors one after the other) and as the *fused* Adam (one kernel for all parameter tensors) that
:func:`companion.fit` runs. The last column uses the update each side runs.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from companion.structured import mass_preserving_network

from . import sir, swiss_roll


def _milliseconds(function, repeats: int) -> float:
    for _ in range(3):
        function()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return 1e3 * statistics.median(times)


def _row(name: str, model: nn.Module, loss, batch: int, steps: int, repeats: int) -> list[str]:
    parameters = [p for p in model.parameters() if p.requires_grad]

    def forward_backward():
        model.zero_grad(set_to_none=True)
        loss(model).backward()

    forward_backward()
    plain = torch.optim.Adam(parameters, lr=1e-6)
    fused = torch.optim.Adam(parameters, lr=1e-6, fused=True)
    backward_ms = _milliseconds(forward_backward, repeats)
    plain_ms, fused_ms = _milliseconds(plain.step, repeats), _milliseconds(fused.step, repeats)
    return [
        name,
        str(batch),
        str(len(parameters)),
        f"{backward_ms:.2f}",
        f"{plain_ms:.2f}",
        f"{fused_ms:.2f}",
        f"{steps:,}",
        f"{steps * (backward_ms + (fused_ms if 'companion' in name else plain_ms)) / 1e3:.1f}",
    ]


#: Printed under the table.
NOTE = (
    "The last column charges each side the Adam update its code runs: PyTorch's plain Adam for the authors' "
    "networks (their code), the fused Adam of `companion.fit` for companion's. Part of the difference in step cost "
    "is therefore the optimiser's implementation, not the network: either network could be trained with either "
    "update."
)


def run(device: torch.device, seeds: list[int], *, quick: bool = False, log=print) -> str:
    """A Markdown table of step costs (CPU time, median of repeats); ``device`` is used for the tensors."""
    repeats = 5 if quick else 50
    torch.manual_seed(0)
    rows = []
    x_sir = torch.rand(64, 3, dtype=torch.float64, device=device)
    y_sir = torch.rand(64, 3, dtype=torch.float64, device=device)
    authors_sir = sir.authors_network().to(device)
    rows.append(
        _row(
            "SIR, authors' network", authors_sir, lambda m: F.mse_loss(m(x_sir[:32]), y_sir[:32]), 32, 150 * 29, repeats
        )
    )
    companion_sir = (
        mass_preserving_network(
            (*sir.WIDTHS, 3), layers_per_block=sir.LAYERS_PER_BLOCK, hidden=sir.HIDDEN, activation="relu"
        )
        .double()
        .to(device)
    )
    epochs, batch = sir.COMPANION_RECIPE["epochs"], sir.COMPANION_RECIPE["batch_size"]
    rows.append(
        _row(
            "SIR, companion's network",
            companion_sir,
            lambda m: F.mse_loss(m(x_sir), y_sir),
            batch,
            epochs * -(-900 // batch),
            repeats,
        )
    )
    x, y = torch.randn(500, 4, device=device), torch.randint(0, 2, (500,), device=device)
    for kind, authors_class in (("ResNet", swiss_roll.AuthorsResNet), ("symplectic", swiss_roll.AuthorsHamiltonianNet)):
        model = authors_class().to(device)

        def authors_loss(m):
            return F.binary_cross_entropy_with_logits(m(x[:125]), y[:125].float()) + 1e-4 * m.h * m.smoothness()

        rows.append(_row(f"Swiss roll {kind}, authors' network", model, authors_loss, 125, 100 * 32, repeats))
        network, recipe = swiss_roll.COMPANION[kind]
        model = swiss_roll.companion_network(kind, **network).to(device)
        rows.append(
            _row(
                f"Swiss roll {kind}, companion's network",
                model,
                lambda m: F.cross_entropy(m(x), y),
                recipe["batch_size"],
                recipe["epochs"] * 4000 // recipe["batch_size"],
                repeats,
            )
        )
    header = [
        "network",
        "batch",
        "parameter tensors",
        "forward + backward (ms)",
        "Adam, plain (ms)",
        "Adam, fused (ms)",
        "optimiser steps in the recipe",
        "steps x step cost (s): authors' plain Adam, companion's fused Adam",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + NOTE
