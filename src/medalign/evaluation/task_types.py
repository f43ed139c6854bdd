"""The evaluation task types: one typed config per task, in a registry keyed by ``type``.

Each entry of ``evaluation.tasks`` in YAML is a mapping with a ``type``; `parse_task` turns it
into that type's dataclass, refusing keys the type does not have (with the valid ones listed).
Every task knows how to `run` itself on a `medalign.evaluation.suite.SuiteRunner`, which
supplies cached embeddings, prompt embeddings and the run's data defaults. Add a task type
with `@register_task` on a `Task` subclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch

from medalign.data.labels import BlankPolicy, UncertainPolicy
from medalign.evaluation.plots.style import dataset_name
from medalign.evaluation.tasks import linear_probe, report_retrieval
from medalign.evaluation.tasks.retrieval import retrieval_metrics
from medalign.evaluation.tasks.zero_shot import binary_zero_shot, zero_shot_classify

if TYPE_CHECKING:
    from medalign.evaluation.suite import SuiteRunner

TaskOutput = tuple[dict[str, Any], int, dict[str, str]]  # (metrics, n, files written)
TASK_TYPES: dict[str, type["Task"]] = {}


@dataclass
class Task:
    """What every task has; unset dataset fields default to the run's ``data`` section.

    Attributes:
        name: results name (default: the type).
        manifest: dataset manifest (default: ``data.manifest``).
        split: split evaluated.
    """

    type: ClassVar[str] = ""
    labelled: ClassVar[bool] = False  # rows / targets follow the label policies
    name: str | None = None
    manifest: str | None = None
    split: str = "test"

    @property
    def title(self) -> str:
        return self.name or self.type

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class LabelledTask(Task):
    """A task whose labels follow policies (default: the run's ``data.uncertain`` / ``data.blank``)."""

    labelled: ClassVar[bool] = True
    uncertain: UncertainPolicy | None = None
    blank: BlankPolicy | None = None


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make `cls` available as ``type: <cls.type>`` in ``evaluation.tasks``."""
    if not cls.type:
        raise ValueError(f"{cls.__name__} needs a class attribute 'type'")
    TASK_TYPES[cls.type] = cls
    return cls


def parse_task(entry: "Task | dict[str, Any]", index: int | None = None) -> Task:
    """A typed task from a YAML mapping (or a task, returned as is).

    Raises:
        ValueError: an unknown ``type`` or a key that type does not have, naming the entry.
    """
    if isinstance(entry, Task):
        return entry
    where = f"evaluation.tasks[{index}]" if index is not None else "evaluation task"
    if not isinstance(entry, dict) or "type" not in entry:
        raise ValueError(f"{where} must be a mapping with a 'type' ({sorted(TASK_TYPES)}), got {entry!r}")
    kind = entry["type"]
    if kind not in TASK_TYPES:
        raise ValueError(f"{where}: unknown task type {kind!r}; known: {sorted(TASK_TYPES)}")
    cls = TASK_TYPES[kind]
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(entry) - allowed - {"type"})
    if unknown:
        raise ValueError(f"{where} ({kind}): unknown keys {unknown}; a {kind} task takes {sorted(allowed)}")
    return cls(**{k: v for k, v in entry.items() if k != "type"})


@register_task
@dataclass
class ZeroShotTask(LabelledTask):
    """Multi-class zero-shot on the split's single-label rows (CheXpert 5x200, CXR 14x100).

    Attributes:
        classes: label columns (default: the prompt file's classes).
        prompts: prompt JSON, a path or a name in configs/prompts (default: ``data.prompts``).
        aggregation: prompts → class: ``embedding``, ``logits`` or ``max``.
    """

    type: ClassVar[str] = "zero_shot"
    classes: list[str] | None = None
    prompts: str | None = None
    aggregation: Literal["embedding", "logits", "max"] = "embedding"

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:
        prompts = runner.prompts(self, self.prompts, self.classes)
        classes = list(prompts)
        emb = runner.embeddings(manifest, self.split, classes, self)
        metrics = zero_shot_classify(torch.from_numpy(emb.image), emb.labels, runner.prompt_embeddings(prompts), classes, self.aggregation)
        return metrics, metrics["n"], {}


@register_task
@dataclass
class BinaryZeroShotTask(LabelledTask):
    """One label column, positive vs negative prompt set (RSNA pneumonia).

    Attributes:
        label: the label column.
        positive: prompt-file key of the positive set (default: `label`).
        negative: prompt-file key of the negative set (default: ``No <label>``).
        prompts: prompt JSON (default: ``data.prompts``).
        aggregation: prompts → class: ``embedding``, ``logits`` or ``max``.
    """

    type: ClassVar[str] = "binary_zero_shot"
    label: str | None = None
    positive: str | None = None
    negative: str | None = None
    prompts: str | None = None
    aggregation: Literal["embedding", "logits", "max"] = "embedding"

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:
        if not self.label:
            raise ValueError(f"binary_zero_shot task {self.title!r} needs 'label' (the label column)")
        positive, negative = self.positive or self.label, self.negative or f"No {self.label}"
        prompts = runner.prompts(self, self.prompts, [positive, negative])
        emb = runner.embeddings(manifest, self.split, [self.label], self)
        pos, neg = runner.prompt_embeddings(prompts)
        metrics = binary_zero_shot(torch.from_numpy(emb.image), emb.labels[:, 0], pos, neg, self.aggregation, (negative, positive))
        return metrics, metrics["n"], {}


@register_task
@dataclass
class RetrievalTask(Task):
    """Image ↔ report Recall@K (pessimistic ranks, de-duplicated reports), mean / median rank.

    Attributes:
        ks: Recall@K cut-offs.
    """

    type: ClassVar[str] = "retrieval"
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:
        emb = runner.embeddings(manifest, self.split, [])
        return retrieval_metrics(emb.image, emb.text, emb.texts, self.ks), len(emb), {}


@register_task
@dataclass
class LinearProbeTask(LabelledTask):
    """Logistic regression on frozen image embeddings, with a training-fraction sweep.

    Attributes:
        classes: label columns (default: ``data.label_columns``).
        train_manifest: probe training manifest (default: `manifest`).
        train_split: probe training split.
        fractions: training fractions.
        multilabel: one-vs-rest per label (True) or one multinomial model (False).
        seed: sampling seed.
        repeats: subsamples per fraction below 1 (mean and 95 % t-interval over them).
        C_grid: C values chosen on `val_split` of the training manifest per repeat (None: C = 1).
        val_split: the split C is chosen on.
    """

    type: ClassVar[str] = "linear_probe"
    classes: list[str] | None = None
    train_manifest: str | None = None
    train_split: str = "train"
    fractions: list[float] = field(default_factory=lambda: list(linear_probe.DEFAULT_FRACTIONS))
    multilabel: bool = True
    seed: int = 0
    repeats: int = 1
    C_grid: list[float] | None = None
    val_split: str = "val"

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:
        classes = self.classes or runner.defaults.label_columns
        if not classes:
            raise ValueError(f"linear_probe task {self.title!r} needs 'classes' or data.label_columns")
        train = runner.embeddings(self.train_manifest or manifest, self.train_split, classes, self)
        test = runner.embeddings(manifest, self.split, classes, self)
        val = runner.embeddings(self.train_manifest or manifest, self.val_split, classes, self) if self.C_grid else None
        sweep = linear_probe.fraction_sweep(
            train.image, train.labels, test.image, test.labels, classes, self.fractions, self.multilabel, self.seed,
            repeats=self.repeats, C_grid=self.C_grid, val_x=None if val is None else val.image, val_y=None if val is None else val.labels,
            progress=runner.loader.get("progress", True),
        )
        plot = linear_probe.plot_fraction_sweep(sweep, runner.out_dir / f"{self.title}_auc_vs_fraction.png",
                                                title=f"{self.title} on {dataset_name(manifest)}")
        metrics = {f"macro_auc@{k}": v["macro_auc"] for k, v in sweep.items()} | {"sweep": sweep, "n_train": len(train)}
        metrics |= {f"converged@{k}": v["converged"] for k, v in sweep.items()}  # L-BFGS stopped before max_iter
        return metrics, len(test), {"plot": plot.name}


@register_task
@dataclass
class ReportRetrievalTask(Task):
    """The k nearest training reports per test image (JSONL), optionally sent to a local LLM.

    Attributes:
        train_manifest: report corpus manifest (default: `manifest`).
        train_split: report corpus split.
        k: reports retrieved per image.
        generator: local transformers model directory for report generation (off when unset).
        generate_limit: images sent to the generator.
        prompt: generation prompt template with ``{reports}`` (a ``.txt`` path or a name in configs/prompts).
    """

    type: ClassVar[str] = "report_retrieval"
    train_manifest: str | None = None
    train_split: str = "train"
    k: int = 5
    generator: str | None = None
    generate_limit: int = 16
    prompt: str | None = None

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:
        corpus = runner.embeddings(self.train_manifest or manifest, self.train_split, [])
        queries = runner.embeddings(manifest, self.split, [])
        records = report_retrieval.nearest_reports(queries.image, corpus.text, corpus.texts, self.k, queries.index)
        for record, own in zip(records, queries.texts):
            record["true_report"] = own
        files = {"reports": report_retrieval.write_jsonl(records, runner.out_dir / f"{self.title}.jsonl").name}
        if self.generator:
            template = report_retrieval.DEFAULT_PROMPT
            if self.prompt:
                from medalign.paths import resolve_config

                template = resolve_config(self.prompt, (".txt",)).read_text()
            generated = report_retrieval.generate_reports(records[: self.generate_limit], self.generator, template)
            files["generated"] = report_retrieval.write_jsonl(generated, runner.out_dir / f"{self.title}_generated.jsonl").name
        metrics = {
            "k": self.k,
            "mean_top1_score": float(np.mean([r["scores"][0] for r in records])),
            "top1_is_own_report_%": float(100 * np.mean([r["reports"][0] == r["true_report"] for r in records])),
        }
        return metrics, len(records), files


@register_task
@dataclass
class SaliencyTask(LabelledTask):
    """Saliency–gaze agreement on the split's rows with a heatmap (docs/gaze.md); ``text: prompt`` rows follow the label policies.

    Attributes:
        method: saliency method (``gradcam``, ``rollout``, or a registered one).
        text: ``report`` (each row's report) or ``prompt`` (its single positive class's prompts).
        prompts: prompt JSON for ``text: prompt`` (default: ``data.prompts``).
        limit: at most this many gaze rows.
        panels: rows drawn in the PNG.
        baselines: also score a centre prior and a randomly initialised model.
        metrics_variant: ``mit`` (the MIT benchmark's definitions) or ``medalign`` (docs/gaze.md).
    """

    type: ClassVar[str] = "saliency"
    method: str = "gradcam"
    text: Literal["report", "prompt"] = "report"
    prompts: str | None = None
    limit: int | None = None
    panels: int = 6
    baselines: bool = True
    metrics_variant: str = "mit"

    def run(self, runner: "SuiteRunner", manifest: str) -> TaskOutput:
        from medalign.evaluation.tasks.saliency import saliency_agreement

        prompts = runner.prompts(self, self.prompts, None) if self.text == "prompt" else None
        uncertain, blank = runner.label_policy(self)
        result = saliency_agreement(
            runner.encoder, manifest, self.split, self.method, self.text, prompts, device=runner.loader.get("device"),
            limit=self.limit, baselines=self.baselines, panels=self.panels, out_dir=runner.out_dir,
            progress=runner.loader.get("progress", True), uncertain=uncertain, blank=blank,
            variant=self.metrics_variant, allow_outside_paths=runner.defaults.allow_outside_paths,
        )
        files = {"panels": result.pop("panels")} if "panels" in result else {}
        return result, result["n"], files
