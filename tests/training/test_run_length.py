"""`ContrastiveModule.count_run` (the run length before Lightning counts it) equals Lightning's own count."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from medalign.training.module import ContrastiveModule


class _Tiny(L.LightningModule):
    count_run = ContrastiveModule.count_run

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.total_steps = None
        self.seen: tuple[int, float] | None = None

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def on_train_start(self) -> None:
        self.count_run(self.trainer.num_training_batches)
        self.seen = (self.total_steps, self.trainer.estimated_stepping_batches)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.trainer.should_stop = True  # the count is all this test needs


@pytest.mark.parametrize("batches,max_epochs,max_steps,accumulate", [
    (7, 3, -1, 1), (7, 3, -1, 2), (7, 3, 10, 1), (7, 3, 100, 3), (5, None, -1, 1), (7, None, 10, 1), (6, -1, 40, 4),
    (6, 2, 5, 2),
])
def test_count_run_matches_lightnings_estimated_stepping_batches(batches, max_epochs, max_steps, accumulate, tmp_path):
    module = _Tiny()
    data = DataLoader(TensorDataset(torch.zeros(batches, 2)), batch_size=1)
    trainer = L.Trainer(max_epochs=max_epochs, max_steps=max_steps, accumulate_grad_batches=accumulate, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(module, data)
    counted, lightning = module.seen
    assert counted == lightning


def test_count_run_keeps_a_length_already_set(tmp_path):
    module = _Tiny()
    module.total_steps = 123
    L.Trainer(max_epochs=1, logger=False, accelerator="cpu", default_root_dir=tmp_path)  # unattached: not read
    module.count_run(10)
    assert module.total_steps == 123
