"""A resumed run keeps its metrics rows and its first config; the resume's config and changes are recorded."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import pytest
import yaml

from medalign.training.cli import cli_main
from medalign.training.run_history import AppendingCSVLogger, changed_keys
from tests.helpers import TINY


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _fit(synthetic_dir: Path, *extra: str):
    return cli_main(["fit", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
                     "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", *extra])


def _rows(run: Path) -> list[dict]:
    with (run / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_resume_appends_metrics_and_keeps_the_first_config(tmp_path, synthetic_dir, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    _fit(synthetic_dir)
    run = tmp_path / "runs" / "medalign" / "version_0"
    before = _rows(run)
    first_config = (run / "config.yaml").read_text()
    assert len(before) > 0
    with caplog.at_level(logging.INFO, logger="medalign.training.run_history"):
        _fit(synthetic_dir, "--ckpt_path", "last", "--trainer.log_every_n_steps", "2")
    assert _rows(run)[: len(before)] == before  # Lightning's logger deleted these rows on resume
    assert (run / "config.yaml").read_text() == first_config
    resumed = yaml.safe_load((run / "config.resume-1.yaml").read_text())
    assert resumed["trainer"]["log_every_n_steps"] == 2
    assert any("trainer.log_every_n_steps: 1 → 2" in r.getMessage() for r in caplog.records)


def test_rows_logged_after_the_resumed_step_are_dropped(tmp_path):
    logger = AppendingCSVLogger(tmp_path, name="run", version=0)
    Path(logger.log_dir).mkdir(parents=True)
    with (Path(logger.log_dir) / "metrics.csv").open("w", newline="") as file:
        file.write("epoch,loss,step\n0,1.0,4\n0,0.9,5\n0,0.8,6\n0,,7\n")
    assert logger.drop_rows_after(5) == 2
    assert [r["step"] for r in _rows(Path(logger.log_dir))] == ["4", "5"]


def test_changed_keys_walks_nested_configs():
    first = {"model": {"init_args": {"lr": 1e-3, "preset": "tiny"}}, "ckpt_path": None, "trainer": {"max_epochs": 2}}
    now = {"model": {"init_args": {"lr": 5e-4, "preset": "tiny"}}, "ckpt_path": "last", "trainer": {"max_epochs": 2, "x": 1}}
    assert changed_keys(first, now) == {"model.init_args.lr": (1e-3, 5e-4), "trainer.x": (None, 1)}


def test_resume_with_new_columns_keeps_the_old_ones(tmp_path):
    logger = AppendingCSVLogger(tmp_path, name="run", version=0)
    Path(logger.log_dir).mkdir(parents=True)
    (Path(logger.log_dir) / "metrics.csv").write_text("epoch,step,val/loss\n0,3,2.5\n")
    logger.log_metrics({"train/loss": 1.5}, step=4)  # only new columns: Lightning's writer dropped the old header
    logger.save()
    logger.log_metrics({"val/loss": 2.0, "val/t2i_R@1": 10.0}, step=5)
    logger.save()
    rows = _rows(Path(logger.log_dir))
    assert [r["step"] for r in rows] == ["3", "4", "5"]
    assert rows[0]["val/loss"] == "2.5" and rows[1]["train/loss"] == "1.5" and rows[2]["val/t2i_R@1"] == "10.0"
