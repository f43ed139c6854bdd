"""No checkpoint is ever written with non-finite weights or optimizer state (`check_finite`)."""

from __future__ import annotations

import sys

import lightning as L
import pytest
import torch

from medalign.training.checkpoint_io import AtomicCheckpointIO, NonFiniteCheckpointError, non_finite_tensors
from medalign.training.cli import cli_main
from tests.helpers import TINY


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


class PoisonOptimizerAt(L.Callback):
    """Put a NaN into the first optimizer state tensor at the end of step `step` (weights stay finite)."""

    def __init__(self, step: int = 2) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            state = next(iter(trainer.optimizers[0].state.values()))
            state["exp_avg"].view(-1)[0] = float("nan")


class PoisonGradAt(L.Callback):
    """Make the update to step `step` a bad one: NaN gradients for the first parameter (the loss was finite)."""

    def __init__(self, step: int = 2) -> None:
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step + 1 == self.step:
            next(p for p in pl_module.parameters() if p.grad is not None).grad.fill_(float("nan"))


def test_non_finite_tensors_finds_weights_and_optimizer_state():
    checkpoint = {
        "state_dict": {"a": torch.ones(3), "b": torch.tensor([1.0, float("inf")]), "n": torch.tensor(3)},
        "optimizer_states": [{"state": {0: {"exp_avg": torch.tensor([float("nan")]), "step": torch.tensor(2.0)}}}],
        "callbacks": {"x": torch.tensor(float("nan"))},  # a metric score, not weights: not checked
    }
    assert non_finite_tensors(checkpoint) == ["state_dict.b", "optimizer_states.0.state.0.exp_avg"]


def test_atomic_io_refuses_a_poisoned_checkpoint_and_keeps_the_previous_file(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 1}, target)
    before = target.read_bytes()
    with pytest.raises(NonFiniteCheckpointError, match=r"not writing checkpoint .*last.ckpt: 1 tensor.* step 2"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.tensor([float("nan"), 1.0])}, "global_step": 2}, target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def _fit(tmp_path, synthetic_dir, *extra):
    return cli_main([
        "fit", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
        "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--checkpoint.monitor", "null",
        "--trainer.max_steps", "4", *extra,
    ])


def _all_finite(folder):
    files = sorted(folder.glob("*.ckpt"))
    for path in files:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        assert non_finite_tensors(saved) == [], path
    return files


@pytest.mark.slow
@pytest.mark.parametrize("saves", [
    ("--checkpoint.every_n_train_steps", "1", "--checkpoint.save_top_k", "-1", "--checkpoint.filename", "s{step}",
     "--checkpoint.last_every_n_train_steps", "1"),  # a save after every step
    ("--trainer.val_check_interval", "1", "--checkpoint.last_every_n_train_steps", "0"),  # validation after every step
])
def test_divergent_run_never_writes_a_nan_checkpoint_and_resumes_from_finite_weights(tmp_path, synthetic_dir, saves):
    with pytest.raises(NonFiniteCheckpointError, match="not writing checkpoint .* step 2"):
        _fit(tmp_path, synthetic_dir, "--trainer.callbacks+=tests.training.test_nan_guard.PoisonGradAt",
             "--trainer.callbacks.step", "2", *saves)
    files = _all_finite(tmp_path / "ckpt")
    last = tmp_path / "ckpt" / "last.ckpt"
    assert last in files
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert step == 1  # the step before the bad update; its save was refused
    resumed = _fit(tmp_path, synthetic_dir, "--ckpt_path", "last")  # NaN weights would trip the guard again
    assert resumed.trainer.global_step == 4
    assert all(torch.isfinite(v).all() for v in resumed.model.state_dict().values() if v.is_floating_point())


@pytest.mark.slow
def test_nan_in_optimizer_state_is_refused_on_every_save_path(tmp_path, synthetic_dir):
    with pytest.raises(NonFiniteCheckpointError, match=r"optimizer_states.0.state"):
        _fit(tmp_path, synthetic_dir, "--trainer.callbacks+=tests.training.test_nan_guard.PoisonOptimizerAt",
             "--trainer.callbacks.step", "2", "--checkpoint.last_every_n_train_steps", "1")
    files = _all_finite(tmp_path / "ckpt")
    assert [torch.load(f, weights_only=True)["global_step"] for f in files] == [1]  # step 1 kept, step 2 refused
