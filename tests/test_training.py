"""fit and accuracy at the edges of their API: modes restored, broadcast losses, empty data and dtypes refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import companion

pytestmark = pytest.mark.usefixtures("one_thread")


def _regression(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return x, x.sum(1, keepdim=True)


class _ModeSpy(nn.Module):
    """A linear model that records the mode of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return self.linear(x)


@pytest.mark.parametrize("training", [True, False])
def test_fit_trains_in_training_mode_validates_in_eval_and_restores_the_mode(training):
    x, y = _regression()
    model = _ModeSpy().train(training)
    companion.fit(model, (x, y), epochs=2, batch_size=40, validation=(x, y), progress=False)
    assert model.modes == [True, False, True, False]  # a training batch, then the validation pass, per epoch
    assert model.training is training and model.linear.training is training


def test_fit_restores_mixed_modes_and_restores_them_after_an_error():
    x, y = _regression()
    model = _ModeSpy().train()
    model.linear.eval()  # a frozen part, as with a pretrained block
    companion.fit(model, (x, y), epochs=1, progress=False)
    assert model.training and not model.linear.training

    def failing(model, inputs, targets):
        raise RuntimeError("a failing loss")

    with pytest.raises(RuntimeError, match="a failing loss"):
        companion.fit(model, (x, y), epochs=1, loss=failing, progress=False)
    assert model.training and not model.linear.training


@pytest.mark.parametrize("training", [True, False])
def test_accuracy_evaluates_in_eval_mode_and_restores_the_mode(training):
    model = _ModeSpy().train(training)
    x = torch.randn(10, 3)
    companion.accuracy(model, x, torch.zeros(10, dtype=torch.long))
    assert model.modes == [False] and model.training is training


def test_mse_with_mismatched_shapes_is_refused():
    """Targets (N,) against outputs (N, 1) would broadcast to an (N, N) loss (PyTorch only warns)."""
    x, y = _regression()
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match=r"same shape, got outputs \(40, 1\) and targets \(40,\).*reshape\(-1, 1\)"):
        companion.fit(model, (x, y[:, 0]), epochs=1, batch_size=40, progress=False)
    with pytest.raises(ValueError, match="same shape"):  # in the validation data too
        companion.fit(model, (x, y), epochs=1, validation=(x, y[:, 0]), progress=False)
    history = companion.fit(model, (x, y), epochs=1, progress=False)  # matching shapes train as before
    assert len(history.loss) == 1


def test_empty_data_is_refused():
    x, y = _regression()
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="train must hold at least one sample"):
        companion.fit(model, (x[:0], y[:0]), epochs=1, progress=False)
    with pytest.raises(ValueError, match="validation must hold at least one sample"):
        companion.fit(model, (x, y), epochs=1, validation=(x[:0], y[:0]), progress=False)
    empty_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:0], y[:0]), batch_size=4)
    with pytest.raises(ValueError, match="validation yields no batch"):
        companion.fit(model, (x, y), epochs=1, validation=empty_loader, progress=False)
    with pytest.raises(ValueError, match="inputs must hold at least one sample"):
        companion.accuracy(model, x[:0], torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize(
    "dtype, fix",
    [
        (torch.float64, r"model\.double\(\)"),
        (torch.float16, r"model\.half\(\)"),
        (torch.bfloat16, r"model\.bfloat16\(\)"),
        (torch.int64, r"x\.float\(\)"),
    ],
)
def test_inputs_of_another_dtype_are_refused_with_both_dtypes_named(dtype, fix):
    x, y = _regression()
    model = nn.Linear(3, 1)
    expected = rf"inputs have dtype {dtype} but the model's parameters are torch.float32.*{fix}"
    with pytest.raises(TypeError, match=expected):
        companion.fit(model, (x.to(dtype), y), epochs=1, progress=False)
    with pytest.raises(TypeError, match=expected):
        companion.accuracy(model, x.to(dtype), torch.zeros(40, dtype=torch.long))


def test_integer_inputs_of_an_embedding_model_still_train():
    """Integer inputs are refused only when the model fails on them: an embedding takes them."""
    tokens = torch.randint(0, 10, (32, 4), generator=torch.Generator().manual_seed(0))
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(12, 2))
    companion.fit(model, (tokens, tokens[:, 0] % 2), epochs=1, loss="cross_entropy", progress=False)
    assert 0.0 <= companion.accuracy(model, tokens, tokens[:, 0] % 2) <= 1.0
