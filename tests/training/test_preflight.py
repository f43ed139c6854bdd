"""`preflight.expected_metrics`: the monitor check knows every metric validation logs, and only those."""

from __future__ import annotations

import sys

import pytest

from medalign.training.preflight import expected_metrics
from tests.helpers import fit_tiny


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.mark.slow
def test_monitor_on_t2i_recall_is_accepted_and_known_names_are_what_validation_logs(tmp_path, synthetic_dir):
    cli = fit_tiny(tmp_path, synthetic_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                   "--checkpoint.monitor", "val/t2i_R@1", "--checkpoint.mode", "max")  # refused before the fix
    assert cli.trainer.checkpoint_callback.monitor == "val/t2i_R@1"  # the option reached the check (fit_tiny once overrode it)
    logged = {k for k in cli.trainer.callback_metrics if k.startswith("val/")}
    names, _ = expected_metrics(cli.trainer, cli.model)
    assert {"val/t2i_R@1", "val/t2i_median_rank", "val/i2t_mean_rank", "val/zero_shot_macro_f1"} <= logged
    assert {n for n in names if n.startswith("val/")} == logged
