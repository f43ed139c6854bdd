"""Validation R@K and zero-shot: the `test` task's numbers on the same embeddings, and chance for a collapsed model."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from medalign.data.dataset import Collator
from medalign.evaluation.tasks.retrieval import retrieval_metrics as task_retrieval_metrics
from medalign.models import DualEncoderOutput
from medalign.training.datamodule import MedAlignDataModule
from medalign.training.module import ContrastiveModule

LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def _datamodule(synthetic_dir) -> MedAlignDataModule:
    dm = MedAlignDataModule(
        manifest=str(synthetic_dir / "manifest.csv"), label_columns=LABELS, prompts="prompts/chexpert5.json",
        image_size=64, batch_size=8, max_length=32, num_workers=0,
    )
    dm.setup("validate")
    return dm


def _trainer() -> L.Trainer:
    return L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                     enable_model_summary=False)


def test_validation_retrieval_equals_the_test_task_on_the_same_embeddings_and_reports(synthetic_dir):
    dm = _datamodule(synthetic_dir)
    torch.manual_seed(0)
    module = ContrastiveModule(preset="tiny", vocab_size=dm.vocab_size)
    dataset = dm.datasets["val"]
    samples = [dataset[i] for i in range(len(dataset))]
    for i in range(1, len(samples), 3):  # duplicate reports, across batch boundaries
        samples[i]["text"] = samples[i - 1]["text"]
    loader = DataLoader(samples, batch_size=7, collate_fn=Collator(dm.tokenizer, max_length=32))
    logged = _trainer().validate(module, dataloaders=loader, verbose=False)[0]

    module.eval()
    with torch.no_grad():
        outs = [module(batch) for batch in loader]
    image = torch.cat([o.image_emb for o in outs]).float().numpy()
    text = torch.cat([o.text_emb for o in outs]).float().numpy()
    want = task_retrieval_metrics(image, text, [s["text"] for s in samples])  # what `test` computes
    assert want["n_duplicate_reports"] == len(samples) - len({s["text"] for s in samples}) >= 7
    for direction in ("i2t", "t2i"):
        for name in ("R@1", "R@5", "R@10", "mean_rank", "median_rank"):
            assert logged[f"val/{direction}_{name}"] == pytest.approx(want[f"{direction}_{name}"], abs=1e-4), (direction, name)
    assert want["i2t_R@10"] > 1  # percent, not a fraction: a fraction would be ≤ 1 here


def test_collapsed_model_scores_chance_in_validation(synthetic_dir, monkeypatch):
    dm = _datamodule(synthetic_dir)
    module = ContrastiveModule(preset="tiny", vocab_size=dm.vocab_size)
    dim = 8  # any width: the metrics only see the embeddings

    def constant(n: int, value: float) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.full((n, dim), value) + torch.arange(dim) * 0.1, dim=-1)

    def collapsed_forward(image, input_ids, attention_mask):
        return DualEncoderOutput(constant(len(image), 1.0), constant(len(input_ids), 2.0), torch.tensor(10.0))

    monkeypatch.setattr(module.model, "forward", collapsed_forward)
    monkeypatch.setattr(module.model, "encode_text", lambda ids, mask: constant(len(ids), 2.0))
    logged = _trainer().validate(module, datamodule=dm, verbose=False)[0]

    n_val = len(dm.datasets["val"])
    n_reports = len(set(dm.datasets["val"].texts))
    for k in (1, 5, 10):
        assert logged[f"val/i2t_R@{k}"] <= 100 * k / n_reports
        assert logged[f"val/t2i_R@{k}"] <= 100 * k / n_val * (n_val - n_reports + 1)
    assert logged["val/i2t_R@1"] == 0.0 and logged["val/t2i_R@1"] == 0.0
    labels = dm.datasets["val"].labels.numpy()
    single = (np.nan_to_num(labels) == 1).sum(1) == 1
    majority = np.bincount(labels[single].argmax(1), minlength=5).max() / single.sum()
    assert majority > 0.2  # "always class 0" could have scored above chance here
    assert logged["val/zero_shot_accuracy"] == 0.0 and logged["val/zero_shot_macro_f1"] == 0.0
