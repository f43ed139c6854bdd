"""`MedAlignCheckpoint`: Lightning's `ModelCheckpoint` with a ``last.ckpt`` that is always the latest state.

Lightning rewrites ``last.ckpt`` only when it also saved a top-k checkpoint at that step, so
with a monitored metric that stopped improving ``last.ckpt`` holds old weights. Here it is
also written

* every `last_every_n_train_steps` optimizer steps (a SIGKILL loses at most that many),
  including before the first validation;
* after every validation and at every epoch end and at the end of training;
* when the process receives SIGTERM (SLURM pre-emption, ``scancel``): the trainer stops after
  the current batch, this writes ``last.ckpt`` and the CLI exits with `PREEMPTED_EXIT_CODE`.
  A cluster sends SIGTERM to the whole process group, loader workers included: they ignore it
  (`ignore_sigterm`, the loaders' ``worker_init_fn``) so that the main process lives to save;
  they end when the main process shuts its loaders down or exits (`loader_worker_init` makes sure
  of the latter: multiprocessing's own exit hook stops workers with SIGTERM and would wait forever).

At `fit` start-up it runs the `medalign.training.preflight` checks.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import signal
import time
from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from medalign.training import preflight

log = logging.getLogger(__name__)

PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM: the job did not finish; schedulers requeue on non-zero


class PreemptionSync(L.Callback):
    """SIGTERM under DDP: every rank stops after the same step, whichever ranks got the signal.

    Lightning's own SIGTERM handler runs a ``broadcast`` inside the signal handler. Under a
    group SIGTERM (``scancel``, SLURM ``--signal``) each rank gets the signal, rank 0 often
    twice (from the group and from its launcher), and those unmatched collectives hang the
    job. Here the handler only notes the signal (and forwards it to launched child ranks, as
    Lightning does); at the end of each training batch the ranks agree with one all-reduce
    (max), and all set ``received_sigterm`` together, so Lightning stops them after the same
    step and `MedAlignCheckpoint` saves it. A single process keeps Lightning's plain flag.
    """

    def __init__(self) -> None:
        self.pending = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        connector = trainer._signal_connector
        self.pending = False

        def notify(signum: int, frame: Any) -> None:  # registered by Lightning for SIGTERM
            log.info("[rank %d] received SIGTERM (%d)", trainer.global_rank, signum)
            if not self.pending and trainer.strategy.launcher is not None:
                trainer.strategy.launcher.kill(signum)
            self.pending = True
            if trainer.world_size == 1:
                connector.received_sigterm = True

        connector._sigterm_notifier_fn = notify  # read when Lightning registers its handlers, after setup

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        if trainer.world_size == 1 or trainer._signal_connector.received_sigterm:
            return
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1.0 if self.pending else 0.0], device=trainer.strategy.root_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)  # every rank, every step: the decision is shared
        if flag.item() > 0:
            trainer._signal_connector.received_sigterm = True


def ignore_sigterm(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: a worker ignores SIGTERM and leaves pre-emption to the main process.

    PyTorch's workers die on a SIGTERM that does not come from their parent, and the main
    process then fails with "DataLoader worker … is killed by signal: Terminated" before it
    can save. Ignoring it keeps the batch in flight; the main process stops the workers.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def loader_worker_init() -> Callable[[int], None]:
    """The loaders' ``worker_init_fn`` (`ignore_sigterm`), with the main process's exit made safe.

    At interpreter exit, multiprocessing stops the daemonic workers still alive (an iterator a
    crashed run or a notebook still holds) with SIGTERM and then joins them without a timeout; a
    worker that ignores SIGTERM would never end and the process would hang after its last line of
    output. The first call registers `end_daemonic_children` to run before that hook (``atexit``
    runs last-in, first-out).
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(end_daemonic_children)
        _exit_hook_registered = True
    return ignore_sigterm


_exit_hook_registered = False


def end_daemonic_children(grace: float = 2.0) -> int:
    """Stop this process's daemonic children as multiprocessing's exit hook does (SIGTERM, then join),
    but SIGKILL those still alive after `grace` seconds (loader workers ignore SIGTERM).

    An exit hook: it also restores the default SIGCHLD action, so that PyTorch's handler does not
    raise "DataLoader worker … is killed" halfway through. Returns how many had to be killed.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    children = [p for p in multiprocessing.active_children() if p.daemon]
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    stubborn = [child for child in children if child.is_alive()]
    for child in stubborn:
        child.kill()
        child.join(grace)
    return len(stubborn)


class MedAlignCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` (all its arguments) plus an always-current ``last.ckpt``.

    Args:
        last_every_n_train_steps: write ``last.ckpt`` every N optimizer steps (0 = only at
            validation, epoch end, SIGTERM and the end of training).
        check_disk: at start-up, refuse to train when the checkpoint folder's disk has less
            free space than one checkpoint (weights ×3 for the optimizer state).
        **kwargs: `ModelCheckpoint` arguments (``monitor``, ``save_top_k``, ``dirpath``, ...).
    """

    def __init__(self, last_every_n_train_steps: int = 500, check_disk: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if last_every_n_train_steps < 0:
            raise ValueError(f"checkpoint.last_every_n_train_steps must be ≥ 0, got {last_every_n_train_steps}")
        self.last_every_n_train_steps = last_every_n_train_steps
        self.check_disk = check_disk
        self._last_written_step = -1
        self.preempted_path: str | None = None

    # -------------------------------------------------------------- start-up
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != TrainerFn.FITTING or trainer.fast_dev_run:
            return
        preflight.check_monitor(self.monitor, trainer, pl_module)
        if not self.save_last:
            log.warning("checkpoint.save_last is off: a pre-empted or killed run cannot be resumed with --ckpt_path last")
        if trainer.is_global_zero and self.dirpath is not None:
            preflight.check_writable(self.dirpath, "checkpoint folder")
            for folder in preflight.log_folders(trainer):
                preflight.check_writable(folder, "log folder")
            if self.check_disk:
                preflight.check_free_space(self.dirpath, preflight.checkpoint_bytes(pl_module))

    # ------------------------------------------------------------- last.ckpt
    def _save_last_now(self, trainer: L.Trainer) -> None:
        """Write ``last.ckpt`` for the current step unless it already holds it."""
        if not self.save_last or trainer.fast_dev_run or trainer.sanity_checking:
            return
        if trainer.state.fn != TrainerFn.FITTING or self._last_written_step == trainer.global_step:
            return
        saved_step = self._last_global_step_saved  # our writes must not suppress a top-k save at this step
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_global_step_saved = saved_step

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        n = self.last_every_n_train_steps
        if n > 0 and trainer.global_step % n == 0:
            self._save_last_now(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_last_now(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_now(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._save_last_now(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        if isinstance(exception, SIGTERMException) and self.save_last:
            self._last_written_step = -1  # the state after the interrupted batch, whatever was written before
            self._save_last_now(trainer)
            self.preempted_path = self.last_model_path
            log.warning(
                "SIGTERM: saved %s at global step %d; resume with --ckpt_path last (same config)",
                self.last_model_path, trainer.global_step,
            )
