"""Logger-less runs never share a folder silently; evaluations land in the checkpoint's run folder."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from medalign.run_folder import RunFolder
from medalign.training.evaluate import EvaluationSuite, output_folder
from medalign.training.fresh_run import check_fresh_run_folder


def _trainer(root, loggers=()):
    return SimpleNamespace(default_root_dir=str(root), loggers=list(loggers))


def test_a_new_logger_less_run_refuses_a_folder_with_another_runs_last_ckpt(tmp_path):
    check_fresh_run_folder(_trainer(tmp_path), None, None)  # empty folder: fine
    last = RunFolder(tmp_path).last_checkpoint
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"last\.ckpt belongs to an earlier run.*--ckpt_path last"):
        check_fresh_run_folder(_trainer(tmp_path), None, None)
    check_fresh_run_folder(_trainer(tmp_path), None, str(last))  # resuming it is fine
    check_fresh_run_folder(_trainer(tmp_path, loggers=[object()]), None, None)  # a logger's version_N is fresh
    with pytest.raises(FileExistsError):  # a fixed --checkpoint.dirpath is shared even with a logger
        check_fresh_run_folder(_trainer(tmp_path / "other", loggers=[object()]), str(last.parent), None)


def test_evaluating_a_checkpoint_writes_into_its_run_folder(tmp_path):
    run = RunFolder(tmp_path / "runs" / "demo" / "version_3")
    run.config.parent.mkdir(parents=True)
    run.config.write_text("x: 1\n")
    run.last_checkpoint.parent.mkdir()
    run.last_checkpoint.write_bytes(b"x")
    trainer = _trainer(tmp_path / "runs")  # `test --trainer.logger false`: formerly runs/eval/<timestamp>
    folder = output_folder(trainer, EvaluationSuite(), str(run.last_checkpoint))
    assert folder.parent == run.eval_root
    assert output_folder(trainer, EvaluationSuite(output_dir=str(tmp_path / "x")), str(run.last_checkpoint)).parent == tmp_path / "x"


def test_analysis_commands_default_into_the_run_folder(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "best.ckpt"  # no config.yaml: the folder above checkpoints/
    assert RunFolder.of_checkpoint(ckpt).analysis("saliency", "test") == tmp_path / "run" / "saliency_test"
    assert RunFolder.of_checkpoint(tmp_path / "loose.ckpt").root == tmp_path


@pytest.mark.slow
def test_second_logger_less_fit_into_the_same_folder_is_refused_unless_resumed(tmp_path, synthetic_dir, monkeypatch):
    from tests.helpers import fit_tiny

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "2")  # logger-less, checkpoints in tmp_path/ckpt
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    with pytest.raises(FileExistsError, match="earlier run"):
        fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "2")
    fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "2", "--ckpt_path", "last")  # resuming it is allowed
