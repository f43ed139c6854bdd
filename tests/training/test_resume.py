"""Resume with changed settings, and damaged checkpoints at every entry point that loads one."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

from medalign.models.checkpoint import CheckpointError
from medalign.training.cli import cli_main
from tests.helpers import TINY, fit_tiny

SHORT = ("--trainer.limit_train_batches", "2", "--model.init_args.min_lr_ratio", "0.5")  # 2 epochs × 2 steps


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.fixture(scope="module")
def step3(tmp_path_factory, synthetic_dir) -> Path:
    """A mid-run checkpoint (step 3 of 4, lr 1e-3) and, next to it, a truncated copy ``cut.ckpt``."""
    out = tmp_path_factory.mktemp("resume")
    old_argv = list(sys.argv)
    try:
        fit_tiny(out, synthetic_dir, *SHORT)
    finally:
        sys.argv = old_argv
    ckpt = out / "ckpt" / "step3.ckpt"
    data = ckpt.read_bytes()
    (out / "ckpt" / "cut.ckpt").write_bytes(data[: len(data) // 3])
    return ckpt


def _resume(tmp_path, synthetic_dir, ckpt, *extra):
    return fit_tiny(tmp_path, synthetic_dir, *SHORT, *extra, "--ckpt_path", str(ckpt))


@pytest.mark.slow
def test_changed_lr_is_honoured_on_resume(tmp_path, synthetic_dir, step3):
    cli = _resume(tmp_path, synthetic_dir, step3, "--model.init_args.lr", "5e-4")
    assert cli.trainer.global_step == 4
    # After the last of 4 steps the cosine is at its floor: lr = peak × min_lr_ratio = 5e-4 × 0.5.
    lr = cli.trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(2.5e-4, rel=1e-9)  # the checkpoint's 1e-3 would give 5e-4


def test_changed_embed_dim_is_refused_naming_the_key(tmp_path, synthetic_dir, step3):
    with pytest.raises(ValueError, match=r"changed settings \(model.embed_dim: checkpoint None, now 64\)"):
        _resume(tmp_path, synthetic_dir, step3, "--model.init_args.embed_dim", "64")


def test_changed_batch_size_is_refused_naming_the_key(tmp_path, synthetic_dir, step3):
    with pytest.raises(ValueError, match=r"data.batch_size: checkpoint 32, now 16"):
        _resume(tmp_path, synthetic_dir, step3, "--data.batch_size", "16")


# ------------------------------------------------------- damaged checkpoints
def _cut(step3: Path) -> Path:
    return step3.parent / "cut.ckpt"


@pytest.mark.parametrize("extra,now", [(("--trainer.max_epochs", "3"), "6 optimizer steps (trainer.max_steps -1, max_epochs 3)"),
                                       (("--trainer.max_steps", "3"), "3 optimizer steps (trainer.max_steps 3, max_epochs 2)")])
def test_changed_run_length_is_refused_naming_both(tmp_path, synthetic_dir, step3, extra, now):
    saved = "scheduled for 4 optimizer steps (trainer.max_steps -1, max_epochs 2)"
    with pytest.raises(ValueError, match=r"changed run length") as err:
        _resume(tmp_path, synthetic_dir, step3, *extra)
    assert saved in str(err.value) and f"this one for {now}" in str(err.value)
    assert "--trainer.max_steps -1 --trainer.max_epochs 2" in str(err.value)  # the fix


@pytest.mark.slow
def test_changed_run_length_allowed_continues_on_the_new_schedule(tmp_path, synthetic_dir, step3, caplog):
    allow = ("--trainer.callbacks+=medalign.training.resume.ResumeGuard", "--trainer.callbacks.allow_schedule_change=true")
    with caplog.at_level("WARNING", logger="medalign.training.resume"):
        cli = _resume(tmp_path, synthetic_dir, step3, *allow, "--trainer.max_epochs", "3")
    assert cli.trainer.global_step == 6
    assert any("changed run length" in r.getMessage() for r in caplog.records)
    lr = cli.trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(5e-4, rel=1e-9)  # the cosine's floor (1e-3 × 0.5) at the new total's end


def test_fit_from_a_damaged_checkpoint_names_it_at_start_up(tmp_path, synthetic_dir, step3):
    with pytest.raises(CheckpointError, match=r"cut.ckpt is damaged"):
        _resume(tmp_path, synthetic_dir, _cut(step3))
    assert not (tmp_path / "ckpt").exists() or not list((tmp_path / "ckpt").iterdir())


def test_init_from_a_damaged_checkpoint_names_it(tmp_path, synthetic_dir, step3):
    with pytest.raises(CheckpointError, match=r"cut.ckpt is damaged"):
        fit_tiny(tmp_path, synthetic_dir, "--model.init_args.init_from", str(_cut(step3)))


def test_test_from_a_damaged_checkpoint_names_it(tmp_path, synthetic_dir, step3):
    with pytest.raises(CheckpointError, match=r"cut.ckpt is damaged"):
        cli_main(["test", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
                  "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
                  "--evaluation.cache_dir", str(tmp_path / "cache"), "--ckpt_path", str(_cut(step3))])


def test_geometry_and_gap_sweep_name_a_damaged_checkpoint(tmp_path, synthetic_dir, step3):
    from medalign.commands import gap_sweep, geometry

    with pytest.raises(CheckpointError, match=r"cut.ckpt is damaged"):
        geometry.run(["--ckpt", str(_cut(step3)), "--manifest", str(synthetic_dir / "manifest.csv")])
    config = gap_sweep.GapSweepConfig(ckpt=str(_cut(step3)), manifest=str(synthetic_dir / "manifest.csv"))
    with pytest.raises(CheckpointError, match=r"cut.ckpt is damaged"):
        gap_sweep._encoder(config)
    empty = tmp_path / "empty.pt"  # a weights file (no .ckpt suffix) goes through the encoder loader
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.pt is damaged: it is empty"):
        gap_sweep._encoder(gap_sweep.GapSweepConfig(ckpt=str(empty), manifest=str(synthetic_dir / "manifest.csv")))
