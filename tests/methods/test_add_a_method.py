"""Adding a method is one file and one YAML (docs/architecture.md, "Add a method"): a toy objective defined
here, referenced by class_path from a YAML, trains through the real CLI and its term is logged and saved."""

from __future__ import annotations

import sys

import pytest
import torch
import yaml

from medalign.methods.base import Objective, StepContext, check_weight
from medalign.training.module import ContrastiveModule
from tests.helpers import fit_tiny


class CentroidPull(Objective):
    """``pull_loss``: mean squared distance of the pairs (a toy method).

    Args:
        weight: weight of the term next to the pair loss.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        check_weight(weight, "CentroidPull.weight")
        self.weight = weight

    def terms(self, batch, out, ctx: StepContext) -> dict[str, torch.Tensor]:
        return {"pull_loss": self.weight * (out.image_emb - out.text_emb).pow(2).sum(-1).mean()}


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def test_a_toy_objective_trains_from_one_yaml_and_is_saved(tmp_path, synthetic_dir):
    config = tmp_path / "centroid_pull.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": {"objectives": [
        {"class_path": f"{__name__}.CentroidPull", "init_args": {"weight": 0.5}}]}}}))
    cli = fit_tiny(tmp_path, synthetic_dir, "--config", str(config), "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0")
    metrics = cli.trainer.callback_metrics
    assert cli.trainer.global_step == 3 and float(metrics["train/pull_loss"]) > 0
    torch.testing.assert_close(metrics["train/loss"], metrics["train/clip_loss"] + metrics["train/pull_loss"])
    saved = torch.load(tmp_path / "ckpt" / "step3.ckpt", weights_only=True)  # plain values only
    assert saved["hyper_parameters"]["objectives"] == [{"class_path": f"{__name__}.CentroidPull", "init_args": {"weight": 0.5}}]
    rebuilt = ContrastiveModule.load_from_checkpoint(tmp_path / "ckpt" / "step3.ckpt")  # no extra arguments
    assert [type(o).__name__ for o in rebuilt.objectives] == ["CLIP", "CentroidPull"] and rebuilt.objectives[1].weight == 0.5
