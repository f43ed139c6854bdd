"""`EpochSummary`: one plain line per epoch when there is no progress bar (SLURM and other log files)."""

from __future__ import annotations

import logging
import math

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

log = logging.getLogger("medalign")


class EpochSummary(Callback):
    """Prints ``epoch 3/8 step 240 | loss 2.31 | val/loss 2.9 val/zero_shot_macro_f1 0.41 … | best …`` per epoch.

    Silent while a progress bar is shown (it already displays the metrics). At the end of `fit`
    it names the best checkpoint and its monitored value.

    Args:
        always: print even when a progress bar is on.
    """

    def __init__(self, always: bool = False) -> None:
        self.always = always
        self._pending: tuple[int, int] | None = None  # (epoch, step) ended, printed once its checkpoint is saved

    def _active(self, trainer: L.Trainer) -> bool:
        return trainer.is_global_zero and (self.always or trainer.progress_bar_callback is None)

    # Checkpoint callbacks run after all others in each hook, so an epoch's line is printed at the
    # next hook (next epoch's start or fit's end), when its checkpoint is on disk.
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._pending = (trainer.current_epoch + 1, trainer.global_step)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)
        if self._active(trainer):
            log.info("fit done at step %d; %s", trainer.global_step, _best(trainer) or "no checkpoint was monitored")

    def _flush(self, trainer: L.Trainer) -> None:
        if self._pending is not None and self._active(trainer):
            log.info(epoch_line(trainer, *self._pending))
        self._pending = None


def epoch_line(trainer: L.Trainer, epoch: int, step: int) -> str:
    """Epoch `epoch` (1-based): validation metrics (``val/*``), last training loss, best checkpoint, on one line."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    parts = [f"epoch {epoch}/{trainer.max_epochs} step {step}"]
    if "loss" in metrics:
        parts.append(f"loss {metrics['loss']:.4g}")
    val = [f"{k} {v:.4g}" for k, v in sorted(metrics.items()) if k.startswith("val/") and math.isfinite(v)]
    if val:
        parts.append(" ".join(val))
    best = _best(trainer)
    if best:
        parts.append(best)
    return " | ".join(parts)


def _best(trainer: L.Trainer) -> str | None:
    checkpoint = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)
    if checkpoint is None or not checkpoint.best_model_path:
        return None
    score = checkpoint.best_model_score
    value = f" ({checkpoint.monitor} {float(score):.4g})" if checkpoint.monitor and score is not None else ""
    return f"best {checkpoint.best_model_path}{value}"
