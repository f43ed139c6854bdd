"""Fault injection: last.ckpt freshness, pre-emption (SIGTERM / SIGKILL), resume, start-up checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medalign.training import preflight
from medalign.training.checkpointing import PREEMPTED_EXIT_CODE
from medalign.training.cli import cli_main
from tests.helpers import TINY, fit_tiny

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _fit_cmd(synthetic_dir: Path, *extra: str) -> list[str]:
    """A tiny `fit` with the default loggers (runs/medalign/version_N under the working folder)."""
    return ["fit", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"), *extra]


def _subprocess_fit(cwd: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "HF_HUB_OFFLINE": "1"}
    code = f"import sys; from medalign.training.cli import cli_main; cli_main({args!r})"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


# ------------------------------------------------------------------ last.ckpt
@pytest.mark.slow
def test_last_ckpt_is_the_final_state_even_when_the_metric_never_improves(tmp_path, synthetic_dir):
    # "epoch" with mode min is best at epoch 0 and never again: Lightning alone would leave
    # last.ckpt at step 2 (the only top-k save) after 4 steps.
    cli = cli_main([
        *_fit_cmd(synthetic_dir), "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min",
        "--checkpoint.last_every_n_train_steps", "0", "--trainer.limit_train_batches", "2",
    ])
    assert cli.trainer.global_step == 4
    last = tmp_path / "ckpt" / "last.ckpt"
    assert _step(last) == 4
    final = cli.model.state_dict()
    saved = _weights(last)
    assert all(torch.equal(saved[k], final[k].cpu()) for k in final)
    assert len(list((tmp_path / "ckpt").glob("best-*.ckpt"))) == 1  # the top-k file still follows the metric


# ---------------------------------------------------------------- pre-emption
@pytest.mark.slow
def test_sigkill_before_the_first_validation_loses_at_most_n_steps(tmp_path, synthetic_dir):
    run = _subprocess_fit(tmp_path, _fit_cmd(
        synthetic_dir, "--trainer.check_val_every_n_epoch", "5", "--checkpoint.last_every_n_train_steps", "3",
        "--trainer.callbacks+=tests.training.faults.SignalAt", "--trainer.callbacks.step", "4",
        "--trainer.callbacks.signum", "9",
    ))
    assert run.returncode == -9, run.stderr[-2000:]
    last = tmp_path / "runs" / "medalign" / "version_0" / "checkpoints" / "last.ckpt"
    assert last.is_file() and _step(last) == 3  # killed after step 4: one step lost


@pytest.mark.slow
def test_sigterm_saves_the_current_step_exits_nonzero_and_resumes_exactly(tmp_path, synthetic_dir, monkeypatch):
    short = ("--trainer.limit_train_batches", "3")  # 2 epochs of 3 steps
    run = _subprocess_fit(tmp_path, _fit_cmd(
        synthetic_dir, *short, "--checkpoint.last_every_n_train_steps", "0",
        "--trainer.callbacks+=tests.training.faults.SignalAt", "--trainer.callbacks.step", "4",
        "--trainer.callbacks.signum", "15",
    ))
    assert run.returncode == PREEMPTED_EXIT_CODE, run.stderr[-3000:]
    last = tmp_path / "runs" / "medalign" / "version_0" / "checkpoints" / "last.ckpt"
    assert _step(last) == 4  # the interrupted step itself, mid epoch 1
    # The requeued job runs the same command plus --ckpt_path last, in the same folder.
    monkeypatch.chdir(tmp_path)
    resumed = cli_main([*_fit_cmd(synthetic_dir, *short), "--ckpt_path", "last"])
    assert resumed.trainer.global_step == 6
    assert not (tmp_path / "runs" / "medalign" / "version_1").exists()  # continued in version_0
    straight = fit_tiny(tmp_path / "straight", synthetic_dir, *short)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ckpt_path_last_finds_the_newest_last_ckpt_of_the_run(tmp_path, synthetic_dir, monkeypatch):
    from medalign.training.resume import find_last_checkpoint

    monkeypatch.chdir(tmp_path)
    cli = cli_main(["--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv")], run=False)
    assert find_last_checkpoint(cli.trainer, None) == (None, None)  # nothing yet: a fresh start
    for version, mtime in ((0, 100), (2, 300), (1, 200)):
        folder = tmp_path / "runs" / "medalign" / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "last.ckpt").write_bytes(b"x")
        os.utime(folder / "last.ckpt", (mtime, mtime))
    path, version = find_last_checkpoint(cli.trainer, None)
    assert version == 2 and path == tmp_path / "runs" / "medalign" / "version_2" / "checkpoints" / "last.ckpt"


# ------------------------------------------------------------ start-up checks
def _fit_expecting(tmp_path, synthetic_dir, error, match, *extra):
    with pytest.raises(error, match=match):
        cli_main([*_fit_cmd(synthetic_dir), "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),
                  "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--trainer.max_steps", "1", *extra])
    assert not list(tmp_path.rglob("*.ckpt"))  # stopped before the first step


def test_unknown_monitor_key_fails_at_start_up_listing_the_known_ones(tmp_path, synthetic_dir):
    _fit_expecting(tmp_path, synthetic_dir, ValueError, r"'val/zero_shot_f1' is not a metric.*val/zero_shot_macro_f1",
                   "--checkpoint.monitor", "val/zero_shot_f1")


def test_unwritable_checkpoint_folder_fails_at_start_up(tmp_path, synthetic_dir):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the checkpoint folder's parent should be")
    _fit_expecting(tmp_path, synthetic_dir, PermissionError, r"cannot write the checkpoint folder .*not_a_folder/ckpt",
                   "--checkpoint.dirpath", str(blocker / "ckpt"), "--checkpoint.monitor", "null")


def test_insufficient_disk_for_one_checkpoint_fails_at_start_up(tmp_path, synthetic_dir, monkeypatch):
    real = preflight.shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))  # 1 MiB
    _fit_expecting(tmp_path, synthetic_dir, OSError, r"not enough free disk for one checkpoint .*1.0 MiB free",
                   "--checkpoint.monitor", "null")


def test_checkpoint_size_estimate_counts_weights_and_adam_state():
    model = torch.nn.Linear(10, 4)  # 44 float32 values
    assert preflight.checkpoint_bytes(model) == 3 * 44 * 4


def test_val_metric_monitored_without_val_rows_fails_with_the_fix(tmp_path, synthetic_dir):
    import pandas as pd

    data = tmp_path / "data"
    data.mkdir()
    for name in ("images", "heatmaps", "tokenizer"):
        (data / name).symlink_to(synthetic_dir / name)
    frame = pd.read_csv(synthetic_dir / "manifest.csv")
    frame.loc[frame["split"] == "val", "split"] = "train"
    frame.to_csv(data / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"'val/loss', a validation metric, but .*no rows with split 'val'.*--checkpoint.monitor null"):
        cli_main(["fit", "--config", TINY, "--data.manifest", str(data / "manifest.csv"), "--trainer.logger", "false",
                  "--trainer.default_root_dir", str(tmp_path), "--checkpoint.dirpath", str(tmp_path / "ckpt"),
                  "--checkpoint.monitor", "val/loss"])
    assert not list(tmp_path.rglob("*.ckpt"))
