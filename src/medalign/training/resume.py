"""Resuming: find the newest ``last.ckpt`` of a run, and never drop a changed setting silently.

``--ckpt_path last`` (requeue-friendly: the same command line works for the first start and
every restart) resolves to the newest ``last*.ckpt`` in the run folder — ``checkpoint.dirpath``
or ``<save_dir>/<name>/version_N/checkpoints`` of the first logger — and continues logging into
that ``version_N``. With no checkpoint yet the run starts fresh.

`ResumeGuard` compares the checkpoint's hyper-parameters with the command line's:

* architecture (`ARCHITECTURE_KEYS`) and data-order keys (`DATA_ORDER_KEYS`) must match —
  the message names each key with both values;
* optimizer settings (`OPTIMIZER_KEYS`) are honoured: the restored optimizer and schedule
  are rescaled to the new values (the schedule's position is kept);
* anything else the module reads at run time is honoured as given, and logged.

The run's length is part of its schedule: the learning rate (warmup + cosine) and the eCLIP
curriculum are functions of progress = step / total optimizer steps, and the total comes from
``trainer.max_steps`` / ``max_epochs`` (× batches per epoch). Every checkpoint records it
(``medalign_schedule``); a resume whose total differs is refused before any step, naming both
values, because at step s the learning rate and p_curr would jump from their values at s/old
to those at s/new. With ``ResumeGuard(allow_schedule_change=True)`` the run continues on the
new total from the same step (the jump happens, and is logged).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import lightning as L

from medalign.methods.legacy import comparable_hparams
from medalign.run_folder import RunFolder

log = logging.getLogger(__name__)

ARCHITECTURE_KEYS = (
    "preset", "vocab_size", "image_model", "image_kwargs", "text_config", "text_pooling", "embed_dim",
    "open_clip_model", "method", "processor", "processor_kwargs",
)
DATA_ORDER_KEYS = ("batch_size", "seed", "expert_stream", "expert_batch_size")
OPTIMIZER_KEYS = ("lr", "weight_decay", "betas", "eps")
SCHEDULE_KEY = "medalign_schedule"  # checkpoint entry: the run's total optimizer steps and what set it
IGNORED_KEYS = ("init_from", "image_weights", "open_clip_weights", "text_model", "open_clip_text_config_dir", "_instantiator")


def find_last_checkpoint(trainer: L.Trainer, dirpath: str | None) -> tuple[Path | None, int | None]:
    """The newest ``last*.ckpt`` of this run and the logger version folder it lives in.

    Args:
        trainer: a trainer whose loggers' versions are not fixed yet.
        dirpath: ``checkpoint.dirpath`` when given.

    Returns:
        (path or None, version number or None).
    """
    if dirpath is not None:
        candidates = list(Path(dirpath).glob("last*.ckpt"))
    elif trainer.loggers:
        logger = trainer.loggers[0]
        root = Path(logger.save_dir or trainer.default_root_dir) / (logger.name or "")
        candidates = [c for version in root.glob("version_*") for c in RunFolder(version).last_checkpoints()]
    else:
        candidates = RunFolder(trainer.default_root_dir).last_checkpoints()
    candidates = [c for c in candidates if c.is_file()]
    if not candidates:
        return None, None
    newest = max(candidates, key=lambda c: c.stat().st_mtime_ns)
    match = re.fullmatch(r"version_(\d+)", newest.parent.parent.name) if dirpath is None else None
    return newest.absolute(), int(match.group(1)) if match else None


def resolve_last(trainer: L.Trainer, dirpath: str | None) -> str | None:
    """``--ckpt_path last`` → a file path (and the loggers continue in its version), or None."""
    path, version = find_last_checkpoint(trainer, dirpath)
    if path is None:
        log.warning("--ckpt_path last: no last.ckpt in this run's folder yet; starting a fresh run")
        return None
    if version is not None:
        for logger in trainer.loggers:
            if hasattr(logger, "_version"):
                logger._version = version
    log.info("--ckpt_path last: resuming from %s", path)
    return str(path)


def _differs(old: Any, new: Any) -> bool:
    normalise = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731 (YAML gives lists, code tuples)
    return normalise(old) != normalise(new)


def changed_settings(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between a checkpoint's and the current hyper-parameters: (saved, now)."""
    keys = {k for k in saved.keys() | current.keys() if not k.startswith("_")} - set(IGNORED_KEYS)
    return {k: (saved.get(k), current.get(k)) for k in sorted(keys) if _differs(saved.get(k), current.get(k))}


def check_resume(
    checkpoint: dict[str, Any], model_hparams: dict[str, Any], data_hparams: dict[str, Any] | None, ckpt_path: Any
) -> dict[str, tuple[Any, Any]]:
    """Refuse unsafe differences between a checkpoint's settings and the current ones.

    Returns:
        The changed optimizer settings, ``{key: (saved, now)}``, to apply after the restore.

    Raises:
        ValueError: an architecture or data-order key differs; the message names each one.
    """
    saved = comparable_hparams(checkpoint.get("hyper_parameters") or {})  # old flat or current form, flat
    model = changed_settings(saved, comparable_hparams(model_hparams))
    data = {}
    if data_hparams is not None and "datamodule_hyper_parameters" in checkpoint:
        data = changed_settings(dict(checkpoint["datamodule_hyper_parameters"]), dict(data_hparams))
    refused = {f"model.{k}": v for k, v in model.items() if k in ARCHITECTURE_KEYS}
    refused |= {f"data.{k}": v for k, v in data.items() if k in DATA_ORDER_KEYS}
    if refused:
        details = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in refused.items())
        raise ValueError(
            f"cannot resume {ckpt_path} with changed settings ({details}): the saved weights or data "
            "position do not fit them. Resume with the checkpoint's values, or start a new run from its weights "
            "with --model.init_args.init_from <ckpt> (fresh optimizer and schedule)"
        )
    honoured = {f"model.{k}": v for k, v in model.items()} | {f"data.{k}": v for k, v in data.items()}
    for key, (old, new) in honoured.items():
        log.warning("resuming with a changed setting: %s was %r, now %r (applied)", key, old, new)
    return {k: v for k, v in model.items() if k in OPTIMIZER_KEYS}


def schedule_record(trainer: L.Trainer) -> dict[str, Any]:
    """The run's length as a checkpoint records it: total optimizer steps, ``max_steps``, ``max_epochs``."""
    total = trainer.estimated_stepping_batches
    return {"total_steps": int(total) if total != float("inf") else None, "max_steps": trainer.max_steps,
            "max_epochs": trainer.max_epochs}


def check_schedule(saved: dict[str, Any] | None, current: dict[str, Any], ckpt_path: Any, allow: bool = False) -> bool:
    """Refuse (or, with `allow`, log) a resume whose total optimizer steps differ from the checkpoint's run.

    Args:
        saved: the checkpoint's `schedule_record` (None: an older checkpoint, not checked).
        current: this run's `schedule_record`.
        ckpt_path: the checkpoint, for messages.
        allow: continue on the new total instead of raising.

    Returns:
        Whether the totals differ.

    Raises:
        ValueError: the totals differ and `allow` is False; the message names both settings and the fixes.
    """
    if not saved:
        log.info("resuming %s: the checkpoint has no schedule record (older medalign); its run length is not checked", ckpt_path)
        return False
    if saved.get("total_steps") == current.get("total_steps"):
        return False
    def setting(r: dict[str, Any]) -> str:  # noqa: E306
        return f"{r.get('total_steps')} optimizer steps (trainer.max_steps {r.get('max_steps')}, max_epochs {r.get('max_epochs')})"
    what = (f"the checkpoint's run {ckpt_path} was scheduled for {setting(saved)}, this one for {setting(current)}: "
            "the learning-rate schedule (warmup + cosine) and the eCLIP curriculum are functions of step / total steps, "
            "so at the resumed step both jump to their values at the new progress")
    if allow:
        log.warning("resuming with a changed run length (allow_schedule_change): %s", what)
        return True
    raise ValueError(
        f"cannot resume with a changed run length: {what}. Resume with the checkpoint's --trainer.max_steps "
        f"{saved.get('max_steps')} --trainer.max_epochs {saved.get('max_epochs')} (and the same data, batch size, "
        "devices and accumulate_grad_batches); or accept the jump with --trainer.callbacks+=medalign.training.resume.ResumeGuard "
        "--trainer.callbacks.allow_schedule_change=true; or start a new run from its weights with "
        "--model.init_args.init_from <ckpt> (fresh optimizer and schedule)"
    )


class ResumeGuard(L.Callback):
    """Checks a ``--ckpt_path`` resume (`check_resume`, `check_schedule`) and applies changed optimizer settings.

    Args:
        allow_schedule_change: resume on a different total of optimizer steps (changed
            ``max_steps`` / ``max_epochs``) instead of refusing; the schedules jump (module docstring).
    """

    def __init__(self, allow_schedule_change: bool = False) -> None:
        self.allow_schedule_change = allow_schedule_change
        self._optimizer_changes: dict[str, tuple[Any, Any]] = {}
        self._saved_schedule: tuple[dict[str, Any] | None] | None = None  # (record,) until checked

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[SCHEDULE_KEY] = schedule_record(trainer)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != "fit":
            return
        datamodule = getattr(trainer, "datamodule", None)
        data = dict(datamodule.hparams) if datamodule is not None else None
        self._optimizer_changes = check_resume(checkpoint, dict(pl_module.hparams), data, trainer.ckpt_path)
        self._saved_schedule = (checkpoint.get(SCHEDULE_KEY),)

    def _check_schedule(self, trainer: L.Trainer) -> None:
        """Once per resume, as soon as the checkpoint and this run's total are both known."""
        if self._saved_schedule is not None:
            (saved,), self._saved_schedule = self._saved_schedule, None
            check_schedule(saved, schedule_record(trainer), trainer.ckpt_path, self.allow_schedule_change)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Before the sanity check: the optimizers (and the run's total) exist, the checkpoint was read."""
        self._check_schedule(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After Lightning restored optimizer and schedule: apply changed optimizer settings."""
        self._check_schedule(trainer)  # strategies that restore after their setup read the checkpoint after on_fit_start
        changes, self._optimizer_changes = self._optimizer_changes, {}
        if not changes:
            return
        optimizer = trainer.optimizers[0]
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        if "lr" in changes:
            old, new = changes["lr"]
            ratio = float(new) / float(old)  # groups keep their relative rates (e.g. a ×2 processor group)
            for i, group in enumerate(optimizer.param_groups):
                group["lr"] *= ratio
                if "initial_lr" in group:
                    group["initial_lr"] *= ratio
                for scheduler in schedulers:
                    if hasattr(scheduler, "base_lrs"):
                        scheduler.base_lrs[i] *= ratio
        for group in optimizer.param_groups:
            if "weight_decay" in changes and group.get("weight_decay", 0) > 0:  # no-decay groups stay at 0
                group["weight_decay"] = float(changes["weight_decay"][1])
            if "betas" in changes:
                group["betas"] = tuple(changes["betas"][1])
            if "eps" in changes:
                group["eps"] = float(changes["eps"][1])
