"""A benchmark study as data: methods × seeds × training fractions → cells with command lines.

A study config (YAML, see ``configs/benchmark/demo.yaml``)::

    name: demo
    base: demo.yaml                    # the training config every cell starts from
    out: runs/benchmark/demo           # one folder per cell inside
    seeds: [0, 1, 2]
    fractions: [0.25, 1.0]             # share of the train split each cell trains on
    args: [--trainer.max_epochs, "4"]  # shared overrides (after `base`, before the method's)
    evaluation: eval/benchmark.yaml    # the `test` suite every cell runs (a config file)
    methods:
      - {name: clip, configs: [], args: []}
      - {name: eclip, configs: [ablations/...], args: [...]}
    questions:                         # paired differences reported in benchmark.md
      - {question: "Does X help?", baseline: clip, method: eclip, metric: zero_shot.macro_f1}
    primary: zero_shot.macro_f1        # optional: the pre-declared primary metric
    steps: [1000, 5000]                # optional: each method once per --trainer.max_steps (eCLIP Fig. 4)

With ``steps``, every method runs once per value as ``<name>_steps<N>`` (its args end with
``--trainer.max_steps=N``), each question is asked at every N, and a metric-vs-steps plot with a
line per method is drawn.

In `args`, ``${seed}`` is the cell's seed and ``${out}`` the study's folder (e.g. a fine-tune
starting from ``${out}/clip/fraction1/seed${seed}/checkpoints/last.ckpt``).

A cell's identity is the hash of its two command lines and the contents of every config file
they name, so editing a config re-runs exactly the cells it touches; the runner adds the code
version and the training manifest's hash when the cell runs (`medalign.provenance`).

Every random stream of a cell derives from the cell seed, in one place (`seed_args`): the
training seed, the data order and subsample, eCLIP's expert draws / mixup λ / random heatmaps,
the objectives' mix draws and the evaluation's probe seeds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medalign.paths import resolve_config
from medalign.run_folder import RunFolder


@dataclass(frozen=True)
class MethodSpec:
    """One method of the study.

    Attributes:
        name: row label in the tables (also the cell folder name).
        configs: extra config files layered on the base (bare names resolve in configs/).
        args: extra command-line overrides, e.g. ``["--model.init_args.lr", "1e-3"]``.
    """

    name: str
    configs: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    series: str | None = None  # the study's method this one expands along the `steps` axis
    steps: int | None = None  # its --trainer.max_steps on that axis


@dataclass(frozen=True)
class Question:
    """A paired comparison reported in benchmark.md: `method` − `baseline` on `metric`, per seed."""

    question: str
    baseline: str
    method: str
    metric: str  # "<task>.<metric>", e.g. "zero_shot.macro_f1"


@dataclass
class BenchmarkConfig:
    """A study: see the module docstring for the YAML layout."""

    name: str
    base: str
    methods: list[MethodSpec]
    out: str = "runs/benchmark"
    seeds: list[int] = field(default_factory=lambda: [0])
    fractions: list[float] = field(default_factory=lambda: [1.0])
    args: list[str] = field(default_factory=list)
    evaluation: str | None = None
    metrics: list[str] = field(default_factory=list)  # "<task>.<metric>" shown in tables (default: all scalars)
    questions: list[Question] = field(default_factory=list)
    primary: str | None = None  # the pre-declared primary metric ("<task>.<metric>"); the tables name it
    source: str | None = None  # the YAML file it came from
    steps: list[int] = field(default_factory=list)  # the training-steps axis (empty: none); methods are expanded along it


@dataclass(frozen=True)
class Cell:
    """One (method, seed, fraction) run: its folder and its `fit` and `test` argument lists."""

    method: str
    seed: int
    fraction: float
    folder: Path
    fit_args: tuple[str, ...]
    test_args: tuple[str, ...]
    config_hash: str
    manifest: str | None = None  # the training manifest (its hash joins the cell's identity when it runs)

    @property
    def key(self) -> str:
        return f"{self.method}/fraction{self.fraction:g}/seed{self.seed}"

    def commands(self, python: str = "python") -> list[str]:
        """The two shell command lines of this cell (what a cluster job runs, in order)."""
        return [shlex.join([python, "-m", "medalign", *args]) for args in (self.fit_args, self.test_args)]


def _as_list(value: Any, key: str, source: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{source}: '{key}' must be a list, got {value!r}")
    return value


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """Read and validate a study YAML (bare names resolve in configs/, e.g. ``benchmark/demo``).

    Raises:
        ValueError: naming the key that is missing or wrong.
    """
    import yaml

    file = resolve_config(path)
    raw = yaml.safe_load(file.read_text()) or {}
    src = str(file)
    known = {"name", "base", "methods", "out", "seeds", "fractions", "args", "evaluation", "metrics", "questions", "primary", "steps"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{src}: unknown keys {unknown}; known: {sorted(known)}")
    for key in ("name", "base", "methods"):
        if not raw.get(key):
            raise ValueError(f"{src}: '{key}' is required")
    methods = []
    for i, entry in enumerate(_as_list(raw["methods"], "methods", src)):
        if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "configs", "args"}:
            raise ValueError(f"{src}: methods[{i}] must be {{name, configs, args}}, got {entry!r}")
        methods.append(MethodSpec(str(entry["name"]), tuple(_as_list(entry.get("configs"), f"methods[{i}].configs", src)),
                                  tuple(str(a) for a in _as_list(entry.get("args"), f"methods[{i}].args", src))))
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"{src}: method names must be unique, got {names}")
    fractions = [float(f) for f in _as_list(raw.get("fractions", [1.0]), "fractions", src)]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"{src}: fractions must be in (0, 1], got {fractions}")
    seeds = [int(s) for s in _as_list(raw.get("seeds", [0]), "seeds", src)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{src}: seeds must be a non-empty list of distinct integers, got {seeds}")
    questions = []
    for i, q in enumerate(_as_list(raw.get("questions"), "questions", src)):
        try:
            question = Question(**q)
        except TypeError as err:
            raise ValueError(f"{src}: questions[{i}] needs question, baseline, method, metric: {err}") from None
        missing = {question.baseline, question.method} - set(names)
        if missing:
            raise ValueError(f"{src}: questions[{i}] names unknown methods {sorted(missing)}; methods: {names}")
        questions.append(question)
    steps = [int(n) for n in _as_list(raw.get("steps"), "steps", src)]
    if any(n < 1 for n in steps) or len(set(steps)) != len(steps):
        raise ValueError(f"{src}: steps must be distinct positive step counts, got {steps}")
    if steps:
        methods, questions = _along_steps(methods, questions, steps)
    metrics = [str(m) for m in _as_list(raw.get("metrics"), "metrics", src)]
    primary = raw.get("primary")
    if primary is not None and metrics and primary not in metrics:
        raise ValueError(f"{src}: primary metric {primary!r} must be one of metrics {metrics}")
    return BenchmarkConfig(
        name=str(raw["name"]), base=str(raw["base"]), methods=methods, out=str(raw.get("out", f"runs/benchmark/{raw['name']}")),
        seeds=seeds, fractions=fractions, args=[str(a) for a in _as_list(raw.get("args"), "args", src)],
        evaluation=raw.get("evaluation"), metrics=metrics, questions=questions, primary=primary, source=src, steps=steps,
    )


def _along_steps(methods: list[MethodSpec], questions: list[Question], steps: list[int]) -> tuple[list[MethodSpec], list[Question]]:
    """Each method once per step count (``<name>_steps<N>``, ``--trainer.max_steps=N`` last); each question per N."""
    expanded = [MethodSpec(f"{m.name}_steps{n}", m.configs, (*m.args, f"--trainer.max_steps={n}"), series=m.name, steps=n)
                for m in methods for n in steps]  # fmt: skip
    asked = [Question(f"{q.question} ({n} steps)", f"{q.baseline}_steps{n}", f"{q.method}_steps{n}", q.metric)
             for q in questions for n in steps]  # fmt: skip
    return expanded, asked


def _config_files(args: tuple[str, ...]) -> list[Path]:
    files = []
    for i, arg in enumerate(args[:-1]):
        if arg in ("--config", "-c"):
            files.append(resolve_config(args[i + 1]))
    return files


def args_hash(args: tuple[str, ...]) -> str:
    """A cell's identity: its command-line arguments and the contents of the config files they name."""
    digest = hashlib.sha256("\0".join(args).encode())
    for file in _config_files(args):
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


# Every seeded stream of a cell → the command-line option that sets it. If an option is renamed,
# change it here (and only here): `seed_args` is the one place a cell seed becomes options.
SEED_OPTIONS = {
    # initialisation, dropout, augmentation (Lightning), and the draws of every objective whose `seed`
    # is left at None (DACL's and m³-mix's mixing, MLM's masking: they follow the run's seed_everything)
    "training": "--seed_everything",
    "data": "--data.seed",                        # data order and the training-fraction subsample
    "expert": "--model.init_args.expert_seed",    # eCLIP expert draws, mixup λ, random heatmaps
}
EXPERT_MODULES = ("ECLIPModule",)  # model classes that take the expert stream's option
PROBE_TASK_TYPES = ("linear_probe",)  # evaluation tasks whose `seed` is the probe seed


def _load_yaml(file: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(file.read_text()) or {}


def _settings(args: tuple[str, ...]) -> dict[str, Any]:
    """What the layered configs and overrides of a command line set: model class, manifest, tasks."""
    found: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg, value = args[i], None
        if "=" in arg and arg.startswith("--"):
            arg, value = arg.split("=", 1)
        elif i + 1 < len(args) and arg.startswith("--"):
            value = args[i + 1]
            i += 1
        i += 1
        if arg in ("--config", "-c") and value is not None:
            raw = _load_yaml(resolve_config(value))
            model = raw.get("model")
            if isinstance(model, str):
                found["model_class"] = model
            elif isinstance(model, dict) and model.get("class_path"):
                found["model_class"] = model["class_path"]
            if isinstance(raw.get("data"), dict) and raw["data"].get("manifest"):
                found["manifest"] = raw["data"]["manifest"]
            if isinstance(raw.get("evaluation"), dict) and raw["evaluation"].get("tasks") is not None:
                found["tasks"] = raw["evaluation"]["tasks"]
        elif arg in ("--model", "--model.class_path") and value is not None:
            found["model_class"] = value
        elif arg == "--data.manifest" and value is not None:
            found["manifest"] = value
        elif arg == "--evaluation.tasks" and value is not None:
            import yaml

            found["tasks"] = yaml.safe_load(value)
    return found


def seed_args(seed: int, model_class: str | None = None, tasks: list[Any] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The options that derive every random stream of a cell from its `seed`.

    Args:
        seed: the cell seed.
        model_class: the cell's ``model.class_path`` (the expert stream only exists for eCLIP).
        tasks: the cell's ``evaluation.tasks``; probe tasks get ``seed: <seed>`` (returned as an
            ``--evaluation.tasks`` override), the others are kept as they are.

    Returns:
        (options for `fit` and `test`, e.g. ``("--seed_everything", "3", "--data.seed", "3", ...)``,
        options for `test` only: the seeded ``--evaluation.tasks``, or nothing).
    """
    streams = ["training", "data"]
    if model_class and model_class.rsplit(".", 1)[-1] in EXPERT_MODULES:
        streams.append("expert")
    both: list[str] = []
    for stream in streams:
        both += [SEED_OPTIONS[stream], str(seed)]
    test: tuple[str, ...] = ()
    if tasks and any(isinstance(t, dict) and t.get("type") in PROBE_TASK_TYPES for t in tasks):
        seeded = [{**t, "seed": seed} if isinstance(t, dict) and t.get("type") in PROBE_TASK_TYPES else t for t in tasks]
        test = ("--evaluation.tasks=" + json.dumps(seeded),)
    return tuple(both), test


def expand_grid(cfg: BenchmarkConfig) -> list[Cell]:
    """Every (method, fraction, seed) cell, in that order, with its command lines and hash."""
    cells = []
    root = Path(cfg.out)
    for method, fraction, seed in itertools.product(cfg.methods, cfg.fractions, cfg.seeds):
        folder = root / method.name / f"fraction{fraction:g}" / f"seed{seed}"
        configs = ["--config", cfg.base]
        for extra in method.configs:
            configs += ["--config", extra]
        evaluation = ("--config", cfg.evaluation) if cfg.evaluation else ()
        own = tuple(arg.replace("${seed}", str(seed)).replace("${out}", str(root)) for arg in (*configs, *cfg.args, *method.args))
        settings = _settings(own)
        tasks = _settings((*own, *evaluation)).get("tasks")  # the test line's order
        seeds, probe_seeds = seed_args(seed, settings.get("model_class"), tasks)
        common = (*own, *seeds, "--data.train_fraction", f"{fraction:g}")
        fit = ("fit", *common, "--trainer.default_root_dir", str(folder), "--trainer.logger", "false",
               "--checkpoint.dirpath", str(RunFolder(folder).checkpoints))
        test = ("test", *common, *evaluation, *probe_seeds, "--trainer.logger", "false", "--evaluation.progress", "false",
                "--evaluation.output_dir", str(RunFolder(folder).eval_root),
                "--ckpt_path", str(RunFolder(folder).last_checkpoint))
        cells.append(Cell(method.name, seed, fraction, folder, fit, test, args_hash(fit + test), settings.get("manifest")))
    return cells


def print_grid(cells: list[Cell], python: str = sys.executable) -> str:
    """The grid as text: one block per cell with its folder, hash and two command lines."""
    lines = [f"{len(cells)} cells"]
    for cell in cells:
        lines.append(f"\n# {cell.key}  (hash {cell.config_hash}, folder {cell.folder})")
        lines += cell.commands(python)
    return "\n".join(lines)
