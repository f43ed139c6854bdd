"""A resumed run keeps its history: metrics.csv appended, the first config kept, each resume's config beside it.

Lightning's CSV logger deletes ``metrics.csv`` when its folder exists, and the CLI's config
callback overwrites ``config.yaml``; after ``--ckpt_path last`` a run folder would hold only what
happened since the resume. `AppendingCSVLogger` keeps the earlier rows (dropping those logged
after the resumed checkpoint, which the resumed run logs again) and `HistoryConfigCallback` saves
``config.resume-N.yaml`` next to the first ``config.yaml`` and names every changed key in the log.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from medalign.run_folder import atomic_path

log = logging.getLogger(__name__)
IGNORED_KEYS = ("ckpt_path",)  # differs on every resume by design


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer without the deletion of an existing ``metrics.csv``, starting from its header.

    Lightning's writer knows only the columns it logged itself; the earlier run's columns are read
    from the file so a later header rewrite keeps them (otherwise its rows no longer fit the header).
    """

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as file:
                self.metrics_keys = sorted(csv.DictReader(file).fieldnames or [])

    def _check_log_dir_exists(self) -> None:
        return


class AppendingCSVLogger(CSVLogger):
    """`CSVLogger` that appends to the ``metrics.csv`` of a resumed run instead of deleting it."""

    @property
    def experiment(self) -> _AppendingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    def drop_rows_after(self, step: int) -> int:
        """Remove rows logged after `step` (re-logged by the resumed run); returns how many were dropped."""
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not path.is_file():
            return 0
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            fields, rows = reader.fieldnames or [], list(reader)
        kept = [r for r in rows if not r.get("step") or int(float(r["step"])) <= step]
        if len(kept) < len(rows):
            with atomic_path(path) as tmp, tmp.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept)
        return len(rows) - len(kept)


class HistoryConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` once; a resume writes ``config.resume-N.yaml`` and logs what changed."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        resume = trainer.ckpt_path or self.config.get("ckpt_path")  # the trainer learns it only after setup
        if not self.already_saved and self.save_to_log_dir and resume and trainer.log_dir:
            first = Path(trainer.log_dir) / self.config_filename
            if first.is_file():
                n = 1
                while (first.parent / f"config.resume-{n}.yaml").exists():
                    n += 1
                self.config_filename = f"config.resume-{n}.yaml"
                if trainer.is_global_zero:
                    now = yaml.safe_load(self.parser.dump(self.config, skip_none=False)) or {}
                    changes = changed_keys(yaml.safe_load(first.read_text()) or {}, now)
                    described = "; ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changes.items()) or "none"
                    log.info("resuming from %s: config saved as %s beside the first run's %s; changed keys: %s",
                             resume, self.config_filename, first.name, described)
        super().setup(trainer, pl_module, stage)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path:
            for logger in trainer.loggers:
                if isinstance(logger, AppendingCSVLogger) and trainer.is_global_zero:
                    dropped = logger.drop_rows_after(trainer.global_step)
                    if dropped:
                        log.info("metrics.csv: dropped %d rows logged after step %d (logged again by this resume)",
                                 dropped, trainer.global_step)


def changed_keys(first: dict[str, Any], now: dict[str, Any], prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two nested config dicts: {key: (first, now)}."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(first.keys() | now.keys(), key=str):
        name = f"{prefix}{key}"
        if name in IGNORED_KEYS:
            continue
        a, b = first.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(changed_keys(a, b, f"{name}."))
        elif a != b:
            out[name] = (a, b)
    return out
