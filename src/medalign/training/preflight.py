"""Start-up checks of a `fit`: problems that would otherwise surface after an epoch (or never).

* the monitored metric is one the module (and its callbacks) will log;
* a monitored validation metric has validation rows to come from;
* the checkpoint and log folders can be written;
* the checkpoint folder's disk holds at least one checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch

ADAM_STATE_FACTOR = 3  # weights + AdamW's two moment buffers per parameter
RETRIEVAL_KS = (1, 5, 10)  # ContrastiveModule logs i2t_R@K for these K ≤ the validation size
TRAIN_METRICS = ("train/loss", "train/lr", "train/logit_scale", "train/clip_loss", "train/priming_loss")


def expected_metrics(trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[set[str], set[str]]:
    """Metric names a `fit` of this module will log, and prefixes under which any name is possible.

    Returns:
        (names, prefixes): e.g. ``{"val/loss", "val/i2t_R@1", ...}`` and ``{"geometry/"}`` when a
        `GeometryCallback` is attached.
    """
    from medalign.training.callbacks import GeometryCallback

    datamodule = getattr(trainer, "datamodule", None)
    names = {"epoch", "step", *TRAIN_METRICS}
    val = (getattr(datamodule, "datasets", None) or {}).get("val")
    if val is not None or datamodule is None:
        n_val = len(val) if val is not None else max(RETRIEVAL_KS)
        names |= {"val/loss", *(f"val/i2t_R@{k}" for k in RETRIEVAL_KS if k <= n_val)}
        if getattr(datamodule, "prompts", None) or datamodule is None:
            names |= {"val/zero_shot_macro_f1", "val/zero_shot_accuracy"}
    prefixes = {"geometry/"} if any(isinstance(c, GeometryCallback) for c in trainer.callbacks) else set()
    extra = getattr(pl_module, "monitorable_metrics", None)  # a subclass may declare more
    if callable(extra):
        names |= set(extra())
    return names, prefixes


def check_monitor(monitor: str | None, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
    """Raise when `monitor` is not a metric this run logs (or has no data to be computed from)."""
    if monitor is None:
        return
    datamodule = getattr(trainer, "datamodule", None)
    has_val = bool((getattr(datamodule, "datasets", None) or {}).get("val")) if datamodule is not None else True
    if monitor.startswith(("val/", "geometry/")) and not has_val:
        where = getattr(datamodule, "manifest_path", "the manifest")
        raise ValueError(
            f"checkpoint.monitor is {monitor!r}, a validation metric, but {where} has no rows with split 'val'. "
            "Give some rows split 'val' (e.g. 5 % of subjects), or monitor nothing: --checkpoint.monitor null"
        )
    names, prefixes = expected_metrics(trainer, pl_module)
    if monitor in names or any(monitor.startswith(p) for p in prefixes):
        return
    known = sorted(names) + [f"{p}*" for p in sorted(prefixes)]
    raise ValueError(
        f"checkpoint.monitor {monitor!r} is not a metric this run logs; it would never improve and no best "
        f"checkpoint would be kept. Known: {known}. Set --checkpoint.monitor to one of them (or null)"
    )


def check_writable(folder: str | Path, what: str) -> None:
    """Create `folder` if needed and write a probe file there; raise naming the folder if that fails."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".medalign-write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise PermissionError(
            f"cannot write the {what} {folder}: {err.strerror or err}. Choose a writable place "
            "(--trainer.default_root_dir, --checkpoint.dirpath) or fix its permissions"
        ) from err


def checkpoint_bytes(module: torch.nn.Module) -> int:
    """Rough size of one training checkpoint: parameters and buffers ×3 for the optimizer state."""
    return ADAM_STATE_FACTOR * sum(t.numel() * t.element_size() for t in module.state_dict().values())


def check_free_space(folder: str | Path, needed: int) -> None:
    """Raise when the disk holding `folder` has fewer than `needed` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(
            f"not enough free disk for one checkpoint in {folder}: {free / 2**20:.1f} MiB free, about "
            f"{needed / 2**20:.1f} MiB needed (weights + optimizer state). Free space or set --checkpoint.dirpath "
            "to a larger disk"
        )


def log_folders(trainer: L.Trainer) -> list[Path]:
    """Folders the trainer's loggers write into."""
    folders = []
    for logger in trainer.loggers:
        folder: Any = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
        if folder:
            folders.append(Path(folder))
    return folders
