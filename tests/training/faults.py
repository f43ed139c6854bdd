"""Fault injectors for the reliability tests (imported by subprocesses through the CLI)."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAt(L.Callback):
    """Send `signum` to this process at the end of optimizer step `step` (15 = SIGTERM, 9 = SIGKILL)."""

    def __init__(self, step: int = 4, signum: int = 15) -> None:
        self.step = step
        self.signum = signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.Signals(self.signum))


class RaiseOnRank(L.Callback):
    """Raise a RuntimeError on global rank `rank` at the end of optimizer step `step`."""

    def __init__(self, rank: int = 1, step: int = 2) -> None:
        self.rank = rank
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            raise RuntimeError(f"injected failure on rank {self.rank} at step {self.step}")
