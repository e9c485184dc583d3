"""Tests of companion.lipschitz.cifar and scripts/paper_scale.py: the CIFAR-10 files read locally, the published
table and its AUC, the augmentation, the three backbones and their Lipschitz bounds (random and crafted weights),
the max-pool's bound, and the experiment end to end under torchrun on fake data."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import companion
from companion.lipschitz import (
    CIFAR10_FOLDER,
    CIFAR10_REGIMES,
    CIFAR10_STD,
    PAPER_EPSILONS,
    PUBLISHED_CIFAR10,
    CifarResNet,
    NormalizedConv2d,
    ResidualConvLayer,
    SwitchingConvLayer,
    certified_accuracy,
    cifar_resnet,
    conv_operator_norm,
    conv_power_iteration,
    load_cifar10,
    network_lipschitz_bound,
    random_crop_flip,
    robustness_auc,
    write_fake_cifar10,
)

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "paper_scale.py"
SMALL = (4, 4, 4)


def _script():
    spec = importlib.util.spec_from_file_location("paper_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _network(regime: str, seed: int = 0, channels=SMALL) -> nn.Module:
    torch.manual_seed(seed)
    return cifar_resnet(regime, channels=channels).double().eval()


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- the data ------------------------------------------------------------------------------------------------------


def test_loader_reads_fake_files_like_the_real_ones(tmp_path: Path) -> None:
    folder = write_fake_cifar10(tmp_path, train_size=23, test_size=7, seed=3)
    assert folder == tmp_path / CIFAR10_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
    )
    images, labels = load_cifar10(tmp_path, train=True)
    assert images.shape == (23, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (23,) and labels.dtype == torch.int64
    assert 0 <= float(images.min()) and float(images.max()) <= 1 and 0 <= int(labels.min()) and int(labels.max()) <= 9
    test_images, test_labels = load_cifar10(str(tmp_path), train=False)
    assert test_images.shape == (7, 3, 32, 32) and test_labels.shape == (7,)
    with open(folder / "test_batch", "rb") as file:
        raw = pickle.load(file, encoding="bytes")
    # channel-first rows of 3072 bytes: the red plane first, then green, then blue; pixels are bytes / 255
    assert torch.equal(test_images[2, 1, 0, :5], torch.tensor(raw[b"data"][2, 1024:1029] / 255.0, dtype=torch.float32))
    assert test_labels.tolist() == raw[b"labels"]


def test_fake_files_are_reproducible(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path / "a", train_size=5, test_size=2, seed=1)
    write_fake_cifar10(tmp_path / "b", train_size=5, test_size=2, seed=1)
    first, second = load_cifar10(tmp_path / "a", train=True), load_cifar10(tmp_path / "b", train=True)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_missing_folder_names_it_and_says_how_to_get_the_data(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_cifar10(tmp_path / "nowhere", train=True)
    message = str(error.value)
    assert str((tmp_path / "nowhere" / CIFAR10_FOLDER).resolve()) in message
    assert "cifar-10-python.tar.gz" in message and "download=True" in message
    write_fake_cifar10(tmp_path, train_size=5, test_size=1, seed=0)
    (tmp_path / CIFAR10_FOLDER / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        load_cifar10(tmp_path, train=True)
    assert load_cifar10(tmp_path, train=False)[0].shape == (1, 3, 32, 32)


@pytest.mark.parametrize(
    "content, why",
    [
        (b"not a pickle at all", "unpickling failed"),
        (pickle.dumps([1, 2, 3], protocol=2), "not a dict"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2), "b'data'"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=2), "b'data'"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, protocol=2), "b'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2), "b'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2), "b'labels'"),
        (pickle.dumps({b"data": os.getcwd, b"labels": []}, protocol=2), "posix.getcwd"),  # no code runs
    ],
)
def test_malformed_files_are_refused_clearly(tmp_path: Path, content: bytes, why: str) -> None:
    write_fake_cifar10(tmp_path, train_size=0, test_size=2, seed=0)
    (tmp_path / CIFAR10_FOLDER / "test_batch").write_bytes(content)
    with pytest.raises(ValueError, match="not a CIFAR-10 python batch") as error:
        load_cifar10(tmp_path, train=False)
    assert why in str(error.value) and "test_batch" in str(error.value)


def test_loader_and_writer_refuse_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="train must be"):
        load_cifar10(tmp_path, train="yes")
    for bad in ({"train_size": -1}, {"test_size": 1.5}, {"seed": -2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            write_fake_cifar10(tmp_path, **{"train_size": 1, "test_size": 1, "seed": 0, **bad})


# -- the published table and its AUC -------------------------------------------------------------------------------


def test_auc_reproduces_every_published_auc() -> None:
    assert PAPER_EPSILONS[0] == 0 and PAPER_EPSILONS[-1] == 1 and len(PAPER_EPSILONS) == 9
    assert {model for model, _ in PUBLISHED_CIFAR10} == {*CIFAR10_REGIMES, "switching_prescribed"}
    assert {margin for _, margin in PUBLISHED_CIFAR10} == {0.07, 0.15, 0.3}
    for key, row in PUBLISHED_CIFAR10.items():
        assert len(row.accuracy) == len(PAPER_EPSILONS)
        auc = robustness_auc(PAPER_EPSILONS, [a / 100 for a in row.accuracy])
        assert abs(auc - row.auc) < 1e-3, (key, auc, row.auc)


def test_auc_is_the_trapezoid_and_refuses_bad_curves() -> None:
    assert robustness_auc([0.0, 1.0], [1.0, 0.0]) == 0.5
    assert robustness_auc(torch.tensor([0.0, 0.5, 2.0]), np.array([1.0, 1.0, 1.0])) == 2.0
    for epsilons, accuracies, match in (
        ([0.0], [1.0], "length"),
        ([0.0, 1.0], [1.0], "length"),
        ([0.0, 0.0], [1.0, 1.0], "increasing"),
        ([-0.1, 1.0], [1.0, 1.0], "increasing"),
        ([0.0, 1.0], [90.0, 80.0], "percentages"),
        ([0.0, float("nan")], [1.0, 1.0], "finite"),
    ):
        with pytest.raises(ValueError, match=match):
            robustness_auc(epsilons, accuracies)


# -- the augmentation ----------------------------------------------------------------------------------------------


def test_random_crop_flip_is_a_padded_crop_or_its_mirror() -> None:
    images = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    first = random_crop_flip(images, generator=torch.Generator().manual_seed(5))
    again = random_crop_flip(images, generator=torch.Generator().manual_seed(5))
    assert first.shape == images.shape and first.dtype == images.dtype and torch.equal(first, again)
    assert not torch.equal(first, random_crop_flip(images, generator=torch.Generator().manual_seed(6)))
    padded = nn.functional.pad(images, (4, 4, 4, 4))
    flipped = 0
    for k in range(len(images)):
        crops = {
            (i, j, flip)
            for i in range(9)
            for j in range(9)
            for flip in (False, True)
            if torch.equal(first[k], (lambda c: c.flip(-1) if flip else c)(padded[k, :, i : i + 32, j : j + 32]))
        }
        assert crops, f"image {k} is no crop of the padded image, mirrored or not"
        flipped += all(flip for _, _, flip in crops)
    assert 16 < flipped < 48  # about half are mirrored


def test_random_crop_flip_without_padding_only_flips_and_refuses_bad_input() -> None:
    images = torch.rand(8, 2, 5, 7, generator=torch.Generator().manual_seed(0))
    out = random_crop_flip(images, padding=0, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(-1)) for o, i in zip(out, images))
    with pytest.raises(ValueError, match="4 dimensions"):
        random_crop_flip(images[0])
    with pytest.raises(ValueError, match="padding"):
        random_crop_flip(images, padding=-1)
    with pytest.raises(TypeError, match="generator"):
        random_crop_flip(images, generator=3)


# -- the networks --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("regime", CIFAR10_REGIMES)
def test_the_paper_backbone_maps_images_to_logits(regime: str) -> None:
    torch.manual_seed(0)
    network = cifar_resnet(regime)
    assert isinstance(network, CifarResNet) and network(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    blocks = [m for m in network if isinstance(m, nn.Sequential)]
    assert [b[0].out_channels for b in blocks] == [32, 64, 128] and network[-1].in_features == 4 * 4 * 128
    layers = {"unconstrained": ResidualConvLayer, "nonexpansive": companion.NonExpansiveConvLayer}
    kind = layers.get(regime, SwitchingConvLayer)
    assert sum(isinstance(m, kind) for m in network.modules()) == (6 if regime == "switching" else 12)
    assert cifar_resnet(regime, n_classes=3, channels=(2, 3), layers_per_block=2)(torch.rand(1, 3, 32, 32)).shape == (
        1,
        3,
    )


def test_backbone_refuses_bad_settings_and_bad_images() -> None:
    with pytest.raises(ValueError, match="unknown regime"):
        cifar_resnet("contractive")
    with pytest.raises(ValueError, match="even"):
        cifar_resnet("switching", layers_per_block=3)
    with pytest.raises(TypeError, match="channels"):
        cifar_resnet("nonexpansive", channels=32)
    with pytest.raises(ValueError, match="channels"):
        cifar_resnet("nonexpansive", channels=(4, 0))
    network = cifar_resnet("nonexpansive", channels=SMALL)
    for images, error in (
        (torch.rand(2, 3, 28, 28), ValueError),
        (torch.rand(2, 1, 32, 32), ValueError),
        (torch.rand(3, 32, 32), ValueError),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), TypeError),
    ):
        with pytest.raises(error, match="images"):
            network(images)
    with pytest.raises(ValueError, match="channels"):
        SwitchingConvLayer(4)(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="odd"):
        NormalizedConv2d(3, 4, 2)
    with pytest.raises(ValueError, match="contractive_range"):
        SwitchingConvLayer(4, contractive_range=(0.1, 4.5))
    with pytest.raises(ValueError, match="expansive_max"):
        SwitchingConvLayer(4, expansive_max=-0.1)


def _craft(network: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(factor)
    return network


def _worst_ratio(network: nn.Module, seed: int, pairs: int = 16) -> float:
    """The largest ||f(x) - f(y)|| / ||x - y|| over random pairs, near and far."""
    x = _images(pairs, seed)
    scales = torch.logspace(-4, 0, pairs, dtype=torch.float64)[:, None, None, None]
    y = (x + scales * (_images(pairs, seed + 1) - 0.5)).clamp(0, 1)
    with torch.no_grad():
        ratio = (network(x) - network(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    return float(ratio.max())


@pytest.mark.parametrize("regime", ["nonexpansive", "switching"])
@pytest.mark.parametrize("factor", [1.0, 1e3])
def test_constrained_networks_keep_their_bound_for_random_and_crafted_weights(regime: str, factor: float) -> None:
    network = _craft(_network(regime, seed=2), factor)
    bound = network_lipschitz_bound(network)
    standardize = 1 / min(CIFAR10_STD)
    if regime == "nonexpansive":
        assert bound == pytest.approx(standardize, rel=1e-6)
    else:
        layers = [m for m in network.modules() if isinstance(m, SwitchingConvLayer)]
        assert standardize < bound <= standardize * 1.05 ** len(layers) * (1 + 1e-6)  # 0.05 in float32
        assert bound == pytest.approx(standardize * np.prod([m.lipschitz_bound() for m in layers]))
    assert _worst_ratio(network, seed=int(factor)) <= bound * (1 + 1e-9)


def test_normalized_conv_is_a_contraction_for_huge_weights() -> None:
    torch.manual_seed(0)
    conv = NormalizedConv2d(3, 5, bias=True).double()
    _craft(conv, 1e3)
    for size in ((32, 32), (7, 9)):
        kernel = conv.normalized_weight(size).detach()
        assert float(conv_operator_norm(kernel, size)) <= 1 + 1e-12
        assert conv_power_iteration(kernel, size, iterations=200) <= 1 + 1e-12
    x, y = _images(4, 0), _images(4, 1)
    moved = (conv(x) - conv(y)).flatten(1).norm(dim=1) <= (x - y).flatten(1).norm(dim=1) * (1 + 1e-12)
    assert bool(moved.all()) and network_lipschitz_bound(conv) == 1.0
    assert type(conv).forward is not nn.Conv2d.forward  # its own forward: the normalised kernel


def test_switching_layer_steps_stay_in_their_ranges() -> None:
    layer = _craft(SwitchingConvLayer(3).double(), 1e3)
    h_contractive, h_expansive = (h.detach() for h in layer.steps())
    assert float(h_contractive) == 1.89 and float(h_expansive) == 0.05 and layer.lipschitz_bound() == 1.05
    with torch.no_grad():
        layer.raw_h_contractive.fill_(-5.0)
        layer.raw_h_expansive.fill_(-5.0)
    assert [float(h.detach()) for h in layer.steps()] == [0.11, 0.0] and layer.lipschitz_bound() == 1.0
    x, y = _images(3, 0)[:, :, :8, :8], _images(3, 1)[:, :, :8, :8]
    assert bool(((layer(x) - layer(y)).flatten(1).norm(dim=1) <= (x - y).flatten(1).norm(dim=1) * (1 + 1e-12)).all())


def test_unconstrained_network_has_no_certificate() -> None:
    with pytest.raises(TypeError, match="no Lipschitz bound known for Conv2d"):
        network_lipschitz_bound(_network("unconstrained"))


def test_certified_accuracy_runs_on_the_constrained_networks() -> None:
    network = _network("switching").float()
    images = _images(6, 3).float()
    labels = network(images).argmax(1)
    bound = network_lipschitz_bound(network)
    fractions = [certified_accuracy(network, images, labels, lipschitz=bound, epsilon=e) for e in (0.0, 1e-6, 1.0)]
    assert fractions[0] >= fractions[1] >= fractions[2] == 0.0 and fractions[0] > 0


def test_max_pool_bound() -> None:
    assert network_lipschitz_bound(nn.MaxPool2d(2)) == 1.0
    assert network_lipschitz_bound(nn.MaxPool2d((3, 2), stride=(3, 2), ceil_mode=True)) == 1.0
    for pool in (nn.MaxPool2d(3, stride=2), nn.MaxPool2d(2, padding=1), nn.MaxPool2d(2, dilation=2)):
        with pytest.raises(TypeError, match="overlap"):
            network_lipschitz_bound(pool)
    pool, x, y = nn.MaxPool2d(2), _images(8, 0), _images(8, 1)
    assert bool(((pool(x) - pool(y)).flatten(1).norm(dim=1) <= (x - y).flatten(1).norm(dim=1)).all())
    overlapping = nn.MaxPool2d(3, stride=1)  # one pixel in nine windows: Lipschitz 3, and so refused above
    spike = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    spike[0, 0, 2, 2] = 1.0
    assert float(overlapping(spike).norm()) == 3.0


# -- the script ----------------------------------------------------------------------------------------------------


def test_script_stops_with_the_loader_message_when_the_data_are_missing(tmp_path: Path, capsys) -> None:
    code = _script().main(["robustness", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert code == 2 and str((tmp_path / "none" / CIFAR10_FOLDER).resolve()) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_script_loss_is_the_authors_hinge_and_flags_a_non_finite_value() -> None:
    script = _script()
    logits = torch.tensor([[1.0, 0.5, -2.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    images, labels = torch.rand(1, 3, 32, 32), torch.tensor([0])
    value = script.paper_loss(0.3)(lambda x: logits.expand(len(x), -1), images, labels)
    # the sum over the wrong classes of max(0, m - (f_y - f_i)), as the authors' multiClassHinge
    assert float(value) == pytest.approx(sum(max(0.0, 0.3 - (1.0 - f)) for f in logits[0, 1:].tolist()))
    with pytest.raises(script.NonFiniteLoss):
        script.paper_loss(0.3)(lambda x: torch.full((len(x), 10), float("nan")), images, labels)


def test_script_end_to_end_under_torchrun(tmp_path: Path) -> None:
    """Two processes (gloo) train the three regimes for one epoch on fake data and write the table."""
    torchrun = Path(sys.executable).parent / "torchrun"
    assert torchrun.exists(), torchrun
    data, out = tmp_path / "data", tmp_path / "out"
    write_fake_cifar10(data, train_size=64, test_size=32, seed=0)
    command = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=2",
        str(SCRIPT),
        "robustness",
        "--data-root",
        str(data),
        "--out",
        str(out),
        "--margins",
        "0.15",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--eval-images",
        "16",
        "--channels",
        "4,4,4",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["processes"] == 2 and len(results["runs"]) == 3
    table = (out / "table.md").read_text()
    for run in results["runs"]:
        published = PUBLISHED_CIFAR10[(run["model"], 0.15)]
        assert len(run["robust_accuracy"]) == 9 and 0 <= run["auc"] <= 1 and run["devices"] == "2 x CPU (1 threads)"
        assert run["settings"]["epochs"] == 1 and run["settings"]["train_images"] == 64 and len(run["loss"]) == 1
        assert (run["model"] == "unconstrained") != ("certified_accuracy" in run)
        assert (out / f"{run['model']}_0.15.pt").exists() and (out / f"{run['model']}_0.15.ckpt").exists()
        published_row = " | ".join(f"{v:.1f}" for v in published.accuracy) + f" | {published.auc:.3f}"
        assert f"| {run['model']} | 0.15 | published | {published_row} |" in table
        assert f"| {run['model']} | 0.15 | ours, attacked (smoke) |" in table
    assert "| ε=0 | 8/255 |" in table and "not comparable" in table
    # launched again (one process): nothing is trained or evaluated again, and the table still has every pair
    again = subprocess.run(
        [sys.executable, *command[3:], "--models", "switching"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert again.returncode == 0 and "evaluated before" in again.stdout and "trained in" not in again.stdout, again
    assert json.loads((out / "results.json").read_text())["runs"] == results["runs"]


def test_fake_batches_with_no_image_load_and_float_labels_are_refused(tmp_path):
    import pickle

    import numpy as np

    from companion.lipschitz import load_cifar10, write_fake_cifar10

    folder = write_fake_cifar10(tmp_path, train_size=4, test_size=0, seed=0)  # data_batch_5 and test_batch empty
    images, labels = load_cifar10(tmp_path, train=True)
    assert images.shape == (4, 3, 32, 32) and labels.shape == (4,)
    assert load_cifar10(tmp_path, train=False)[0].shape == (0, 3, 32, 32)
    batch = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [1.5, 2.0]}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match="not integers"):
        load_cifar10(tmp_path, train=False)


def test_a_finished_pair_with_other_settings_is_not_reused():
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "paper_scale.py"
    spec = importlib.util.spec_from_file_location("paper_scale", script)
    paper_scale = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paper_scale)
    paper_scale._refuse_other_settings(Path("x"), {"epochs": 1}, {"epochs": 1})
    with pytest.raises(SystemExit, match="epochs 1 there, 3 now"):
        paper_scale._refuse_other_settings(Path("x"), {"epochs": 1}, {"epochs": 3})
