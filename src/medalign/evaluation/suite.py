"""An evaluation suite: tasks listed in YAML, run on one encoder's cached embeddings.

Task types (``type`` in each entry of ``evaluation.tasks``; `medalign.evaluation.task_types`):
``zero_shot``, ``binary_zero_shot``, ``retrieval``, ``linear_probe``, ``report_retrieval``,
``saliency``. `SuiteRunner` gives every task cached embeddings, prompt embeddings and the run's
data defaults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from medalign.data.labels import BlankPolicy, UncertainPolicy, check_policies
from medalign.data.prompts import load_prompts
from medalign.evaluation.embeddings import EmbeddingSet, encode_strings, get_embeddings
from medalign.evaluation.encoders import Encoder
from medalign.evaluation.task_types import (  # noqa: F401 - re-exported: the task types
    TASK_TYPES, LinearProbeTask, RetrievalTask, Task, ZeroShotTask, parse_task, register_task,
)
from medalign.evaluation.tasks.zero_shot import class_prompt_embeddings
from medalign.paths import resolve_config
from medalign.run_folder import RunFolder, file_sha256

log = logging.getLogger(__name__)


@dataclass
class DataDefaults:
    """What tasks inherit from the run's data section."""

    manifest: str
    label_columns: list[str]
    prompts: str | None = None
    uncertain: UncertainPolicy = "zeros"
    blank: BlankPolicy = "zeros"
    on_error: Literal["raise", "skip"] = "raise"
    max_skip_share: float = 0.01
    allow_outside_paths: bool = False  # data.allow_outside_paths (`medalign.data.manifest.confine_paths`)


def default_tasks(defaults: DataDefaults) -> list[Task]:
    """The data manifest's test split: zero-shot (when prompts are set), retrieval, linear probe."""
    tasks: list[Task] = [ZeroShotTask()] if defaults.prompts else []
    tasks.append(RetrievalTask())
    if defaults.label_columns:
        tasks.append(LinearProbeTask())
    return tasks


class SuiteRunner:
    """Runs tasks on one encoder; every embedding comes from `get_embeddings` (cached).

    Args:
        encoder: the frozen model.
        defaults: the run's data settings.
        out_dir: results folder (plots and JSONL files are written here).
        cache_dir: embedding cache root.
        loader: `get_embeddings` keyword arguments (batch_size, num_workers, device, progress).
    """

    def __init__(self, encoder: Encoder, defaults: DataDefaults, out_dir: Path, cache_dir: str | Path | None, **loader: Any) -> None:
        self.encoder, self.defaults, self.out_dir, self.cache_dir, self.loader = encoder, defaults, Path(out_dir), cache_dir, loader

    def embeddings(self, manifest: str, split: str, classes: list[str], task: Task | None = None) -> EmbeddingSet:
        """Cached embeddings; labels follow the task's label policies, else the run's."""
        uncertain, blank = self.label_policy(task)
        return get_embeddings(
            self.encoder, manifest, split, classes, cache_dir=self.cache_dir, uncertain=uncertain, blank=blank,
            on_error=self.defaults.on_error, max_skip_share=self.defaults.max_skip_share,
            bad_rows_path=RunFolder(self.out_dir).bad_rows(), allow_outside_paths=self.defaults.allow_outside_paths, **self.loader,
        )

    def label_policy(self, task: Task | None) -> tuple[UncertainPolicy, BlankPolicy]:
        """(uncertain, blank) of a task: its own settings, else the run's ``data`` section."""
        uncertain = getattr(task, "uncertain", None) or self.defaults.uncertain
        blank = getattr(task, "blank", None) or self.defaults.blank
        check_policies(uncertain, blank, prefix=f"evaluation task {task.name or task.type!r}: " if task else "data.")
        return uncertain, blank

    def prompt_embeddings(self, prompts: dict[str, list[str]]) -> list[torch.Tensor]:
        flat = [p for texts in prompts.values() for p in texts]
        device = self.loader.get("device")
        stacked = encode_strings(self.encoder, flat, cache_dir=self.cache_dir, device=device)
        return class_prompt_embeddings(stacked, [len(v) for v in prompts.values()])

    def run(self, task: Task | dict[str, Any]) -> dict[str, Any]:
        """One task's record: name, type, dataset identity, n and metrics."""
        task = parse_task(task)
        manifest = task.manifest or self.defaults.manifest
        record: dict[str, Any] = {"name": task.title, "type": task.type, "manifest": str(manifest), "split": task.split,
                                  "manifest_sha256": file_sha256(manifest)}
        if task.labelled:
            record["label_policy"] = dict(zip(("uncertain", "blank"), self.label_policy(task)))
        metrics, n, files = task.run(self, manifest)
        record.update(n=int(n), metrics=metrics, files=files)
        return record

    def prompts(self, task: Task, path: str | None, classes: list[str] | None) -> dict[str, list[str]]:
        """A task's prompt sets (its own file, else ``data.prompts``), restricted to `classes`."""
        path = path or self.defaults.prompts
        if not path:
            raise ValueError(f"task {task.title!r} needs a prompt file: set its 'prompts' or data.prompts")
        return load_prompts(resolve_config(path, (".json",)), classes=classes)
