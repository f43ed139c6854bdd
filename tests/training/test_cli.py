"""The training entry point end to end: config resolution, fit, exact resume, test, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from medalign.training.cli import cli_main, resolve_config_args
from medalign.paths import CONFIG_DIR
from tests.helpers import fit_tiny

from tests.helpers import TINY


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def test_bare_config_names_resolve_in_configs_dir():
    args = resolve_config_args(["fit", "--config", "demo.yaml", "-c", "clip_swin", "--config=demo"])
    assert args[2] == str(CONFIG_DIR / "demo.yaml")
    assert args[4] == str(CONFIG_DIR / "clip_swin.yaml")
    assert args[5] == "--config=" + str(CONFIG_DIR / "demo.yaml")
    with pytest.raises(FileNotFoundError, match="no_such_config"):
        resolve_config_args(["fit", "--config", "no_such_config.yaml"])


def test_paper_config_without_data_fails_fast_with_instructions():
    with pytest.raises(ValueError, match=r"--data.manifest.*medalign synth --out data/synthetic"):
        cli_main(["--config", "clip_swin.yaml"], run=False)


def test_paper_config_parses_to_the_papers_hyperparameters(synthetic_dir):
    cli = cli_main(["--config", "clip_swin.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv")], run=False)
    hp = cli.model.hparams
    assert (hp.model["preset"], hp.lr, hp.weight_decay, tuple(hp.betas), hp.warmup_fraction) == ("swin_t", 1e-4, 1e-3, (0.9, 0.98), 0.1)
    assert cli.model.model.embed_dim == 512 and cli.model.model.image_encoder.num_features == 768
    assert cli.model.model.text_encoder.num_features == 768
    assert cli.datamodule.hparams.image_size == 224 and cli.datamodule.hparams.max_length == 256
    assert cli.trainer.max_steps == 10_000 and cli.trainer.precision == "bf16-mixed"


_fit = fit_tiny


@pytest.mark.slow
def test_fit_then_resume_mid_epoch_is_exact(tmp_path, synthetic_dir):
    full = _fit(tmp_path / "a", synthetic_dir)
    assert full.trainer.global_step == 10  # 160 train rows / 32 × 2 epochs
    mid_epoch = tmp_path / "a" / "ckpt" / "step3.ckpt"  # batch 3 of 5 in epoch 0
    assert mid_epoch.is_file() and (tmp_path / "a" / "ckpt" / "last.ckpt").is_file()
    resumed = _fit(tmp_path / "b", synthetic_dir, "--ckpt_path", str(mid_epoch))
    assert resumed.trainer.global_step == 10
    a, b = full.model.state_dict(), resumed.model.state_dict()
    changed = False
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{key} differs after resume")
    start = torch.load(mid_epoch, weights_only=False)["state_dict"]
    changed = any(not torch.equal(start[k], a[k]) for k in a)
    assert changed  # training after step 3 did move the weights


@pytest.mark.slow
def test_test_subcommand_reports_zero_shot_and_retrieval(tmp_path, synthetic_dir):
    fit = _fit(tmp_path, synthetic_dir, "--trainer.max_epochs", "1")
    cli = cli_main(
        ["test", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
         "--trainer.logger", "false", "--ckpt_path", str(tmp_path / "ckpt" / "last.ckpt"),
         "--evaluation.enabled", "false"]  # Lightning's test loop; the default suite: tests/evaluation/
    )
    metrics = cli.trainer.callback_metrics
    for key in ("test/loss", "test/zero_shot_macro_f1", "test/zero_shot_accuracy", "test/i2t_R@1", "test/i2t_R@10", "test/t2i_R@1"):
        assert key in metrics, key
    assert fit.trainer.global_step == 5
    # One definition per metric: the module's loop (as in validation) and the `test` suite agree on
    # the same checkpoint and split — same units, same report de-duplication, same tie rule.
    suite = cli_main(
        ["test", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
         "--trainer.logger", "false", "--ckpt_path", str(tmp_path / "ckpt" / "last.ckpt"),
         "--evaluation.cache_dir", str(tmp_path / "cache"), "--evaluation.output_dir", str(tmp_path / "eval"),
         "--evaluation.progress", "false"]
    ).evaluation_results
    tasks = {t["name"]: t["metrics"] for t in suite["tasks"]}
    for name in ("i2t_R@1", "i2t_R@5", "i2t_R@10", "t2i_R@1", "t2i_R@10", "i2t_mean_rank", "t2i_median_rank"):
        assert float(metrics[f"test/{name}"]) == pytest.approx(tasks["retrieval"][name], abs=1e-4), name
    assert float(metrics["test/zero_shot_macro_f1"]) == pytest.approx(tasks["zero_shot"]["macro_f1"], abs=1e-6)
    assert float(metrics["test/zero_shot_accuracy"]) == pytest.approx(tasks["zero_shot"]["accuracy"], abs=1e-6)


def test_nan_loss_stops_training_with_a_clear_message(tmp_path, synthetic_dir):
    cli = _fit(tmp_path, synthetic_dir, "--trainer.max_steps", "2")  # a trained module to poison
    module = cli.model
    with torch.no_grad():
        module.model.image_projection.weight.fill_(float("nan"))
    batch = next(iter(cli.datamodule.train_dataloader()))
    with pytest.raises(FloatingPointError, match=r"non-finite loss at global step .*clip_loss"):
        module.training_step(batch, 0)
