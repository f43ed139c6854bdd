"""`SkippedRows`: the main-process side of ``data.on_error: skip`` during `fit` and `validate`.

Loader workers replace unreadable rows and report them in ``batch["bad_rows"]``
(`medalign.data.dataset.ImageTextDataset`). This callback takes the reports off every batch
before the model sees it, counts distinct rows per epoch and split (`SkipLedger`), logs
``data/skipped_rows`` (train) and ``data/skipped_rows_val`` after each epoch (summed over
ranks), stops the run when an epoch's share exceeds ``data.max_skip_share``, and appends the bad
rows to ``<run folder>/bad_rows.csv``. `MedAlignCLI` adds it to every trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from medalign.data.skips import BAD_ROWS_KEY, SkipLedger
from medalign.run_folder import RunFolder


class SkippedRows(L.Callback):
    """Counts, logs, limits and lists the rows a ``skip`` data module left out.

    Args:
        path: CSV file for the bad rows; default ``<trainer.log_dir or default_root_dir>/bad_rows.csv``.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.ledgers: dict[str, SkipLedger] = {}

    def _ledger(self, trainer: L.Trainer, split: str) -> SkipLedger:
        if split not in self.ledgers:
            datamodule = trainer.datamodule
            datasets = getattr(datamodule, "datasets", {}) or {}
            size = len(datasets[split]) if split in datasets else 0
            if split == "train":  # each rank serves its own share of the split
                size //= max(trainer.world_size, 1)
            share = float((getattr(datamodule, "hparams", None) or {}).get("max_skip_share", 0.01))
            rank = trainer.global_rank if trainer.world_size > 1 else None
            if self.path is None:
                path = RunFolder.of_trainer(trainer).bad_rows(rank)
            else:
                path = self.path if rank is None else self.path.with_name(f"{self.path.stem}.rank{rank}{self.path.suffix}")
            self.ledgers[split] = SkipLedger(split, size, share, path)
        return self.ledgers[split]

    def _take(self, trainer: L.Trainer, batch: Any, split: str, epoch: int) -> None:
        if not isinstance(batch, dict):
            return
        for part in (batch, batch.get("main"), batch.get("expert")):  # plain, or the eCLIP {"main", "expert"} batch
            if isinstance(part, dict) and BAD_ROWS_KEY in part:
                self._ledger(trainer, split).record(part.pop(BAD_ROWS_KEY), epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ledger(trainer, "train").start_epoch(trainer.current_epoch)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._take(trainer, batch, "train", trainer.current_epoch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _skipping(trainer):
            count = float(self._ledger(trainer, "train").count)
            pl_module.log("data/skipped_rows", count, reduce_fx="sum", sync_dist=True, on_epoch=True)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # every validation pass re-counts (a sanity check and the first epoch's pass are separate)
        self._ledger(trainer, "val").start_epoch(self._val_pass(trainer))

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._take(trainer, batch, "val", self._val_pass(trainer))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if _skipping(trainer) and not trainer.sanity_checking:
            count = float(self._ledger(trainer, "val").count)
            pl_module.log("data/skipped_rows_val", count, reduce_fx="sum", sync_dist=True)

    def on_test_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._take(trainer, batch, "test", 0)

    @staticmethod
    def _val_pass(trainer: L.Trainer) -> int:
        """A number unique to this validation pass: -1 for the sanity check, else the global step."""
        return -1 if trainer.sanity_checking else trainer.global_step


def _skipping(trainer: L.Trainer) -> bool:
    hparams = getattr(trainer.datamodule, "hparams", None)
    return bool(hparams) and hparams.get("on_error") == "skip"
