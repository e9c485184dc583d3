"""fit under torchrun (two CPU processes, gloo) equals one process; checkpoints resume a killed run exactly."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import companion

SCRIPT = Path(__file__).parent / "scripts" / "fit_run.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"
spec = importlib.util.spec_from_file_location("fit_run", SCRIPT)
fit_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fit_run)


def _options(**values) -> argparse.Namespace:
    defaults = dict(checkpoint=None, resume=False, noise=False, die_after_steps=None)
    return argparse.Namespace(**{**defaults, **values})


def _run(*command, expect: int = 0) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    environment["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == expect, done.stdout[-3000:] + done.stderr[-3000:]


def test_two_processes_under_torchrun_train_the_weights_of_one_process(tmp_path: Path) -> None:
    out = tmp_path / "two.pt"
    checkpoint = tmp_path / "two.ckpt"
    _run(TORCHRUN, "--standalone", "--nproc_per_node=2", SCRIPT, out, "--checkpoint", checkpoint)
    two = torch.load(out, weights_only=True)
    net, history = fit_run.train(_options())
    for name, value in net.state_dict().items():
        torch.testing.assert_close(two["weights"][name], value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(two["history"]["loss"]), torch.tensor(history.loss), rtol=1e-5, atol=0)
    torch.testing.assert_close(torch.tensor(two["history"]["val_loss"]), torch.tensor(history.val_loss))
    assert two["history"]["lr"] == pytest.approx(history.lr)
    saved = torch.load(checkpoint, weights_only=True)  # written by process 0, with both processes' random states
    assert saved["epoch"] == fit_run.EPOCHS and saved["settings"]["processes"] == 2 and len(saved["random"]) == 2
    assert "divisible by the 2 processes" in two["errors"]["indivisible_batch"]
    assert "seed ([0, 1])" in two["errors"]["different_seeds"]


def test_a_killed_run_resumed_from_its_checkpoint_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    checkpoint, out = tmp_path / "run.ckpt", tmp_path / "resumed.pt"
    steps_per_epoch = -(-fit_run.N_SAMPLES // fit_run.BATCH)
    die = steps_per_epoch + 2  # killed in the second epoch, after the first epoch's checkpoint
    _run(sys.executable, SCRIPT, out, "--noise", "--checkpoint", checkpoint, "--die-after-steps", die, expect=17)
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 1 and not out.exists()
    _run(sys.executable, SCRIPT, out, "--noise", "--checkpoint", checkpoint, "--resume")
    resumed = torch.load(out, weights_only=True)
    net, history = fit_run.train(_options(noise=True))
    for name, value in net.state_dict().items():
        assert torch.equal(resumed["weights"][name], value), name
    assert resumed["history"]["loss"] == history.loss and resumed["history"]["val_loss"] == history.val_loss
    assert resumed["history"]["lr"] == history.lr


def _small():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1), (torch.randn(8, 3), torch.randn(8, 1))


def test_resume_refuses_a_missing_file_other_settings_and_a_foreign_file(tmp_path: Path) -> None:
    net, data = _small()
    path = tmp_path / "a.ckpt"
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        companion.fit(net, data, epochs=1, checkpoint=path, resume=True, progress=False)
    companion.fit(net, data, epochs=2, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="lr was 0.001, now 0.01"):
        companion.fit(net, data, epochs=2, lr=1e-2, checkpoint=path, resume=True, progress=False)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint written by companion.fit"):
        companion.fit(net, data, epochs=2, checkpoint=path, resume=True, progress=False)


def test_resuming_a_finished_run_trains_nothing_more(tmp_path: Path) -> None:
    net, data = _small()
    path = tmp_path / "done.ckpt"
    first = companion.fit(net, data, epochs=2, checkpoint=path, progress=False)
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    again = companion.fit(net, data, epochs=2, checkpoint=path, resume=True, progress=False)
    assert again.loss == first.loss and all(torch.equal(weights[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(distributed="yes"), TypeError, "distributed must be True, False or None"),
        (dict(resume=True), ValueError, "pass checkpoint=path as well"),
        (dict(resume=1, checkpoint="x"), TypeError, "resume must be True or False"),
        (dict(checkpoint=3), TypeError, "checkpoint must be a path"),
        (dict(amp=True), ValueError, "amp=True runs the training steps in CUDA autocast"),
        (dict(amp="bf16"), TypeError, "amp must be True or False"),
    ],
)
def test_bad_options_are_refused(options: dict, error: type, match: str) -> None:
    net, data = _small()
    with pytest.raises(error, match=match):
        companion.fit(net, data, epochs=1, progress=False, **options)


def test_distributed_true_outside_torchrun_says_how_to_launch(monkeypatch) -> None:
    for name in companion.distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    net, data = _small()
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node=N"):
        companion.fit(net, data, epochs=1, progress=False, distributed=True)


def test_resume_refuses_another_model_loss_margin_after_step_or_data(tmp_path: Path) -> None:
    def run(**changes):
        torch.manual_seed(0)
        x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
        options = dict(
            model=companion.lipschitz_classifier(4, 3, width=4, depth=1, kind="nonexpansive"),
            data=(x, y),
            loss=companion.hinge_loss(0.3),
            after_step=None,
        )
        options.update(changes)
        return companion.fit(
            options["model"],
            options["data"],
            epochs=1,
            loss=options["loss"],
            after_step=options["after_step"],
            checkpoint=tmp_path / "c.ckpt",
            resume=(tmp_path / "c.ckpt").exists(),
            progress=False,
        )

    run()
    torch.manual_seed(0)
    others = {
        "loss": dict(loss=companion.hinge_loss(0.07)),
        "model": dict(model=companion.lipschitz_classifier(4, 3, width=4, depth=1, kind="switching")),
        "after_step": dict(after_step=lambda model: None),
        "data": dict(data=(torch.randn(16, 4), torch.randint(0, 3, (16,)))),
    }
    for key, change in others.items():
        with pytest.raises(ValueError, match=f"{key} was"):
            run(**change)


def test_a_dataloader_with_its_own_generator_resumes_exactly(tmp_path: Path) -> None:
    x, y = torch.randn(40, 3, generator=torch.Generator().manual_seed(0)), torch.randn(40, 1)

    def start():
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3)
        )
        return torch.nn.Linear(3, 1), loader

    net, loader = start()
    companion.fit(net, loader, epochs=4, progress=False)
    expected = net.weight.detach().clone()

    class Killed(Exception):
        pass

    steps = [0]

    def kill_in_the_third_epoch(model):
        steps[0] += 1
        if steps[0] == 12:  # 5 steps an epoch
            raise Killed

    net, loader = start()
    path = tmp_path / "loader.ckpt"
    with pytest.raises(Killed):
        companion.fit(net, loader, epochs=4, checkpoint=path, after_step=kill_in_the_third_epoch, progress=False)
    net, loader = start()  # a new process: the loader's generator back at its seed
    companion.fit(
        net, loader, epochs=4, checkpoint=path, resume=True, after_step=kill_in_the_third_epoch, progress=False
    )
    assert torch.equal(net.weight, expected)


@pytest.mark.parametrize("bad", ["", "folder", "file/inside.ckpt"])
def test_a_bad_checkpoint_path_is_refused_before_any_training(tmp_path: Path, bad: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file")
    net, data = _small()
    steps = []
    path = "" if bad == "" else tmp_path / bad
    with pytest.raises(ValueError, match="checkpoint"):
        companion.fit(net, data, epochs=1, checkpoint=path, after_step=lambda m: steps.append(1), progress=False)
    assert steps == []
