"""An evaluation suite: tasks listed in YAML, run on one encoder's cached embeddings.

Task types (``type`` in each entry of ``evaluation.tasks``):

* ``zero_shot`` — multi-class on the split's single-label rows (CheXpert 5x200, CXR 14x100).
* ``binary_zero_shot`` — one label column, positive vs negative prompt set (RSNA pneumonia).
* ``retrieval`` — image ↔ report Recall@K, mean / median rank.
* ``linear_probe`` — logistic regression on frozen image embeddings, train-fraction sweep.
* ``report_retrieval`` — k nearest training reports per test image (JSONL), optional local LLM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from medalign.data.prompts import load_prompts
from medalign.evaluation.tasks import linear_probe, report_retrieval
from medalign.evaluation.embeddings import EmbeddingSet, encode_strings, get_embeddings
from medalign.evaluation.encoders import Encoder, file_hash
from medalign.evaluation.tasks.retrieval import retrieval_metrics
from medalign.evaluation.tasks.zero_shot import binary_zero_shot, class_prompt_embeddings, zero_shot_classify
from medalign.paths import resolve_config

log = logging.getLogger(__name__)

TaskType = Literal["zero_shot", "binary_zero_shot", "retrieval", "linear_probe", "report_retrieval"]


@dataclass
class TaskConfig:
    """One evaluation task; unset dataset fields default to the run's ``data`` section.

    Attributes:
        type: which evaluator runs.
        name: results name (default: the type).
        manifest: dataset manifest (default: ``data.manifest``).
        split: split evaluated.
        classes: label columns (zero-shot / probe; default: prompt classes or ``data.label_columns``).
        prompts: prompt JSON, a path or a name in configs/prompts (default: ``data.prompts``).
        aggregation: prompts → class: ``embedding``, ``logits`` or ``max``.
        label: label column of a binary task.
        positive: prompt-file key of the positive set (default: `label`).
        negative: prompt-file key of the negative set (default: ``No <label>``).
        train_manifest: probe / report corpus manifest (default: `manifest`).
        train_split: probe training / report corpus split.
        fractions: probe training fractions.
        multilabel: probe one-vs-rest per label (True) or one multinomial model (False).
        ks: Recall@K cut-offs.
        k: reports retrieved per image.
        generator: local transformers model directory for report generation (off when unset).
        generate_limit: images sent to the generator.
        seed: sampling seed.
    """

    type: TaskType
    name: str | None = None
    manifest: str | None = None
    split: str = "test"
    classes: list[str] | None = None
    prompts: str | None = None
    aggregation: Literal["embedding", "logits", "max"] = "embedding"
    label: str | None = None
    positive: str | None = None
    negative: str | None = None
    train_manifest: str | None = None
    train_split: str = "train"
    fractions: list[float] = field(default_factory=lambda: list(linear_probe.DEFAULT_FRACTIONS))
    multilabel: bool = True
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    k: int = 5
    generator: str | None = None
    generate_limit: int = 16
    seed: int = 0


@dataclass
class DataDefaults:
    """What tasks inherit from the run's data section."""

    manifest: str
    label_columns: list[str]
    prompts: str | None = None
    uncertain: str = "zeros"


def default_tasks(defaults: DataDefaults) -> list[TaskConfig]:
    """The data manifest's test split: zero-shot (when prompts are set), retrieval, linear probe."""
    tasks = [TaskConfig(type="zero_shot")] if defaults.prompts else []
    tasks.append(TaskConfig(type="retrieval"))
    if defaults.label_columns:
        tasks.append(TaskConfig(type="linear_probe"))
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

    def embeddings(self, manifest: str, split: str, classes: list[str]) -> EmbeddingSet:
        return get_embeddings(
            self.encoder, manifest, split, classes, cache_dir=self.cache_dir, uncertain=self.defaults.uncertain, **self.loader
        )

    def prompt_embeddings(self, prompts: dict[str, list[str]]) -> list[torch.Tensor]:
        flat = [p for texts in prompts.values() for p in texts]
        device = self.loader.get("device")
        stacked = encode_strings(self.encoder, flat, cache_dir=self.cache_dir, device=device)
        return class_prompt_embeddings(stacked, [len(v) for v in prompts.values()])

    def run(self, task: TaskConfig) -> dict[str, Any]:
        """One task's record: name, type, dataset identity, n and metrics."""
        manifest = task.manifest or self.defaults.manifest
        name = task.name or task.type
        record: dict[str, Any] = {"name": name, "type": task.type, "manifest": str(manifest), "split": task.split,
                                  "manifest_sha256": file_hash(manifest)}
        metrics, n, files = getattr(self, f"_{task.type}")(task, manifest, name)
        record.update(n=int(n), metrics=metrics, files=files)
        return record

    def _prompts(self, task: TaskConfig, classes: list[str] | None) -> dict[str, list[str]]:
        path = task.prompts or self.defaults.prompts
        if not path:
            raise ValueError(f"task {task.name or task.type!r} needs a prompt file: set its 'prompts' or data.prompts")
        return load_prompts(resolve_config(path, (".json",)), classes=classes)

    def _zero_shot(self, task: TaskConfig, manifest: str, name: str):
        prompts = self._prompts(task, task.classes)
        classes = list(prompts)
        emb = self.embeddings(manifest, task.split, classes)
        metrics = zero_shot_classify(torch.from_numpy(emb.image), emb.labels, self.prompt_embeddings(prompts), classes, task.aggregation)
        return metrics, metrics["n"], {}

    def _binary_zero_shot(self, task: TaskConfig, manifest: str, name: str):
        if not task.label:
            raise ValueError(f"binary_zero_shot task {name!r} needs 'label' (the label column)")
        positive, negative = task.positive or task.label, task.negative or f"No {task.label}"
        prompts = self._prompts(task, [positive, negative])
        emb = self.embeddings(manifest, task.split, [task.label])
        pos, neg = self.prompt_embeddings(prompts)
        metrics = binary_zero_shot(torch.from_numpy(emb.image), emb.labels[:, 0], pos, neg, task.aggregation, (negative, positive))
        return metrics, metrics["n"], {}

    def _retrieval(self, task: TaskConfig, manifest: str, name: str):
        emb = self.embeddings(manifest, task.split, [])
        return retrieval_metrics(emb.image, emb.text, emb.texts, task.ks), len(emb), {}

    def _linear_probe(self, task: TaskConfig, manifest: str, name: str):
        classes = task.classes or self.defaults.label_columns
        if not classes:
            raise ValueError(f"linear_probe task {name!r} needs 'classes' or data.label_columns")
        train = self.embeddings(task.train_manifest or manifest, task.train_split, classes)
        test = self.embeddings(manifest, task.split, classes)
        sweep = linear_probe.fraction_sweep(
            train.image, train.labels, test.image, test.labels, classes, task.fractions, task.multilabel, task.seed
        )
        plot = linear_probe.plot_fraction_sweep(sweep, self.out_dir / f"{name}_auc_vs_fraction.png", title=name)
        metrics = {f"macro_auc@{k}": v["macro_auc"] for k, v in sweep.items()} | {"sweep": sweep, "n_train": len(train)}
        metrics |= {f"converged@{k}": v["converged"] for k, v in sweep.items()}  # L-BFGS stopped before max_iter
        return metrics, len(test), {"plot": plot.name}

    def _report_retrieval(self, task: TaskConfig, manifest: str, name: str):
        corpus = self.embeddings(task.train_manifest or manifest, task.train_split, [])
        queries = self.embeddings(manifest, task.split, [])
        records = report_retrieval.nearest_reports(queries.image, corpus.text, corpus.texts, task.k, queries.index)
        for record, own in zip(records, queries.texts):
            record["true_report"] = own
        files = {"reports": report_retrieval.write_jsonl(records, self.out_dir / f"{name}.jsonl").name}
        if task.generator:
            generated = report_retrieval.generate_reports(records[: task.generate_limit], task.generator)
            files["generated"] = report_retrieval.write_jsonl(generated, self.out_dir / f"{name}_generated.jsonl").name
        metrics = {
            "k": task.k,
            "mean_top1_score": float(np.mean([r["scores"][0] for r in records])),
            "top1_is_own_report_%": float(100 * np.mean([r["reports"][0] == r["true_report"] for r in records])),
        }
        return metrics, len(records), files
