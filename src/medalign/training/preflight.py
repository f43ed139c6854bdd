"""Start-up checks of a `fit`: problems that would otherwise surface after an epoch (or never).

* the monitored metric is one the module (and its callbacks) will log;
* a monitored validation metric has validation rows to come from (for zero-shot: single-label rows
  of the prompted classes);
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
TRAIN_METRICS = ("train/loss", "train/lr", "train/logit_scale", "train/clip_loss", "train/priming_loss")


def validation_metric_names(pl_module: L.LightningModule) -> set[str]:
    """The ``val/`` names this module's validation logs, found by running its metric code on dummy embeddings.

    ``val/loss`` and whatever ``evaluate_embeddings`` returns (retrieval both ways with ranks,
    zero-shot when the data has prompts) — the same function validation calls, so the list
    cannot drift from what is logged. Runs under ``no_grad`` in eval mode with the RNG state
    forked, so a run's randomness is untouched.
    """
    names = {"val/loss"}
    evaluate = getattr(pl_module, "evaluate_embeddings", None)
    dim = getattr(getattr(pl_module, "model", None), "embed_dim", None)
    if not callable(evaluate) or not isinstance(dim, int) or dim < 1:
        return names
    data = getattr(pl_module, "data_context", None)
    k = max(len(getattr(data, "label_columns", None) or ()), 1)
    n = max(k, 2)
    emb = torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(0)), dim=1)  # (N, D)
    dummy = {"image": emb, "text": emb.clone(), "labels": torch.eye(n, k), "index": torch.arange(n),
             "report_key": torch.arange(n)}  # (N, K) labels: one positive class per row
    training = pl_module.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            pl_module.eval()
            names |= {f"val/{name}" for name in evaluate(dummy)}
    finally:
        pl_module.train(training)
    return names


def expected_metrics(trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[set[str], set[str]]:
    """Metric names a `fit` of this module will log, and prefixes under which any name is possible.

    Returns:
        (names, prefixes): e.g. ``{"val/loss", "val/i2t_R@1", "val/t2i_median_rank", ...}`` and
        ``{"geometry/"}`` when a `GeometryCallback` is attached.
    """
    from medalign.training.callbacks import GeometryCallback

    datamodule = getattr(trainer, "datamodule", None)
    names = {"epoch", "step", *TRAIN_METRICS}
    if datamodule is None or (getattr(datamodule, "datasets", None) or {}).get("val") is not None:
        names |= validation_metric_names(pl_module)
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
    if monitor.startswith("val/zero_shot"):
        check_zero_shot_rows(monitor, datamodule)
    names, prefixes = expected_metrics(trainer, pl_module)
    if monitor in names or any(monitor.startswith(p) for p in prefixes):
        return
    known = sorted(names) + [f"{p}*" for p in sorted(prefixes)]
    raise ValueError(
        f"checkpoint.monitor {monitor!r} is not a metric this run logs; it would never improve and no best "
        f"checkpoint would be kept. Known: {known}. Set --checkpoint.monitor to one of them (or null)"
    )


def check_zero_shot_rows(monitor: str, datamodule: Any) -> None:
    """Raise when validation zero-shot has no prompts or no single-label validation row to score.

    Validation zero-shot classifies the rows positive for exactly one prompted class (under the
    data's label policy); with none it is skipped every epoch and the monitored key never appears.
    """
    manifest = getattr(datamodule, "manifest", None)
    prompts = getattr(datamodule, "prompts", None)
    if manifest is None or prompts is None:
        return  # not our data module: nothing to check ahead
    where = getattr(datamodule, "manifest_path", None) or getattr(manifest, "path", "the manifest")
    if not prompts:
        raise ValueError(f"checkpoint.monitor is {monitor!r} but the data has no zero-shot prompts (data.prompts); "
                         "set --data.prompts (e.g. prompts/chexpert5.json) or monitor val/loss")
    from medalign.data.labels import single_label_rows
    from medalign.data.manifest import Manifest

    hp = getattr(datamodule, "hparams", {})
    val = manifest.split("val")
    scored = Manifest(val.path, val.frame, [c for c in prompts if c in val.label_columns])
    labels = scored.labels(hp.get("uncertain", "zeros"), hp.get("blank", "zeros"))
    if labels.shape[1] == 0 or not single_label_rows(labels).any():
        raise ValueError(
            f"checkpoint.monitor is {monitor!r} but {where} has no validation row positive for exactly one of the "
            f"prompted classes {list(prompts)} ({len(val)} val rows): zero-shot would be skipped every epoch. "
            "Monitor val/loss or a retrieval metric (--checkpoint.monitor val/i2t_R@10 --checkpoint.mode max), "
            "or give the val split single-label rows"
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
