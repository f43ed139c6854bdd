"""`train.py test`: the ``evaluation`` config section and the run that replaces Lightning's test loop.

The suite encodes each (checkpoint, manifest, split) once into the embedding cache, runs its
tasks on the cached arrays and writes one results folder per run::

    <run folder of --ckpt_path>/eval/<YYYYmmdd-HHMMSS>/results.{json,csv,md}  (+ plots, report JSONL)

(`output_folder`: ``evaluation.output_dir`` when set; without a checkpoint ``runs/<name>/eval``.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from medalign.evaluation.embeddings import DEFAULT_CACHE_DIR
from medalign.evaluation.encoders import Encoder, MedAlignEncoder, load_checkpoint_encoder, load_pretrained_encoder
from medalign.evaluation.results import markdown_table, write_results
from medalign.evaluation.suite import DataDefaults, SuiteRunner, Task, default_tasks, parse_task
from medalign.run_folder import RunFolder, new_timestamped_folder

log = logging.getLogger(__name__)


@dataclass
class EvaluationSuite:
    """The ``evaluation`` section of a config (used by the ``test`` subcommand).

    Attributes:
        enabled: run this suite on ``test``; false → Lightning's own test loop (test/loss etc.).
        tasks: tasks to run, each a mapping with a ``type`` and that type's keys
            (`medalign.evaluation.task_types`); unset → the data manifest's test split: zero-shot with the data's
            prompts, retrieval and a linear probe.
        encoder: ``checkpoint`` (the model / --ckpt_path) or ``open_clip`` (a frozen open_clip model).
        weights: open_clip weights file or hf-hub-layout directory (``encoder: open_clip``).
        arch: open_clip architecture of a weights file, e.g. ``ViT-B-32``.
        text_config_dir: local HF directory with the open_clip text tower's config.json.
        cache_dir: embedding cache root (default ``$MEDALIGN_CACHE_DIR`` or ``runs/cache``).
        output_dir: results root; a timestamped folder is made inside (default ``<run>/eval``).
        batch_size: encoder batch (default data.eval_batch_size or data.batch_size).
        num_workers: image-loading workers (default data.num_workers).
        device: ``cpu`` / ``cuda`` (default: CUDA when the trainer uses it).
        progress: tqdm progress bars while encoding.
    """

    enabled: bool = True
    tasks: list[dict[str, Any]] | None = None
    encoder: Literal["checkpoint", "open_clip"] = "checkpoint"
    weights: str | None = None
    arch: str | None = None
    text_config_dir: str | None = None
    cache_dir: str | None = None
    output_dir: str | None = None
    batch_size: int | None = None
    num_workers: int | None = None
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        # Each YAML entry becomes its type's dataclass now, so a typo fails at start-up.
        if self.tasks is not None:
            self.tasks = [parse_task(entry, i) for i, entry in enumerate(self.tasks)]


def evaluate(
    encoder: Encoder,
    suite: EvaluationSuite,
    defaults: DataDefaults,
    out_dir: str | Path,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | None = None,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """Run every task of `suite` on `encoder`; write and print the results.

    Returns:
        The results dict also written to ``<out_dir>/results.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runner = SuiteRunner(
        encoder, defaults, out_dir, suite.cache_dir or DEFAULT_CACHE_DIR,
        batch_size=batch_size, num_workers=num_workers, device=device, progress=suite.progress,
    )
    tasks = suite.tasks if suite.tasks is not None else default_tasks(defaults)
    names = [t.title for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"evaluation.tasks: task names must be unique, got {names}; set 'name' on repeated types")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "checkpoint": checkpoint,
        "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint, "settings": encoder.settings},
        "tasks": [runner.run(task) for task in tasks],
    }
    results["seconds"] = round(time.perf_counter() - started, 3)
    suite_config = asdict(suite) | {"tasks": [{"type": t.type, **asdict(t)} for t in tasks]}
    results["config"] = {"suite": suite_config, "data": asdict(defaults)}
    paths = write_results(results, out_dir)
    print(markdown_table(results))
    print(f"results: {paths['json'].parent}")
    return results


def encoder_from_cli(model: Any, datamodule: Any, ckpt_path: str | None, suite: EvaluationSuite) -> Encoder:
    """The encoder a ``test`` run evaluates: an open_clip model, the checkpoint, or the config's model."""
    if suite.encoder == "open_clip":
        if not suite.weights:
            raise ValueError("evaluation.encoder is 'open_clip': set evaluation.weights (a local file or directory)")
        if ckpt_path:
            log.warning("--ckpt_path %s is ignored: evaluating the open_clip model %s", ckpt_path, suite.weights)
        return load_pretrained_encoder(suite.weights, suite.arch, suite.text_config_dir)  # open_clip or transformers folder
    hp = datamodule.hparams
    settings = dict(max_length=hp.max_length, image_size=hp.image_size, mean=tuple(hp.mean), std=tuple(hp.std))
    if ckpt_path:  # a plain weights file (no hyper-parameters) is built as the config's --model
        return load_checkpoint_encoder(ckpt_path, datamodule.tokenizer, weights_file_model=dict(model.hparams), **settings)
    init_from = getattr(model.hparams, "init_from", None)
    if init_from:
        from medalign.models import load_weights

        load_weights(model.model, init_from)
    log.warning("no --ckpt_path: evaluating the config's model weights (%s)", init_from or "random initialisation")
    return MedAlignEncoder(model.model, datamodule.tokenizer, name=f"config model ({init_from or 'random init'})", **settings)


def output_folder(trainer: Any, suite: EvaluationSuite, ckpt_path: str | None = None) -> Path:
    """``eval/<timestamp>`` (unique within the process) inside: ``evaluation.output_dir`` when set; else the run
    folder of the checkpoint evaluated (`RunFolder.of_checkpoint`); else ``runs/<logger name>`` or the trainer's
    ``default_root_dir``."""
    if suite.output_dir:
        return new_timestamped_folder(suite.output_dir)
    if ckpt_path and Path(ckpt_path).is_file():
        return RunFolder.of_checkpoint(ckpt_path).new_eval_folder()
    if trainer.loggers:
        logger = trainer.loggers[0]
        return RunFolder(Path(logger.save_dir or trainer.default_root_dir) / (logger.name or "")).new_eval_folder()
    return RunFolder(trainer.default_root_dir).new_eval_folder()


def run_test(trainer: Any, model: Any, datamodule: Any, ckpt_path: str | None, suite: EvaluationSuite) -> dict[str, Any]:
    """The ``test`` subcommand: the suite on the checkpoint's cached embeddings (rank 0 only)."""
    if getattr(trainer, "global_rank", 0) != 0:  # launched with several processes: one evaluates
        return {}
    hp = datamodule.hparams
    defaults = DataDefaults(
        manifest=str(datamodule.manifest_path),
        label_columns=list(datamodule.label_columns),
        prompts=hp.prompts,
        uncertain=hp.uncertain,
        blank=hp.get("blank", "zeros"),
        on_error=hp.get("on_error", "raise"),
        max_skip_share=hp.get("max_skip_share", 0.01),
        allow_outside_paths=bool(hp.get("allow_outside_paths", False)),
    )
    device = suite.device
    if device is None:
        root = getattr(trainer.strategy, "root_device", torch.device("cpu"))
        device = "cuda" if root.type == "cuda" else "cpu"
    return evaluate(
        encoder_from_cli(model, datamodule, ckpt_path, suite),
        suite,
        defaults,
        output_folder(trainer, suite, ckpt_path),
        batch_size=suite.batch_size or hp.eval_batch_size or hp.batch_size,
        num_workers=hp.num_workers if suite.num_workers is None else suite.num_workers,
        device=device,
        checkpoint=str(ckpt_path) if ckpt_path else None,
    )
