"""Mistakes a `medalign fit/validate/test/predict` command line shows before Lightning is imported.

Importing Lightning, torch and the towers takes 10–60 s on a loaded machine (docs/performance.md,
"CLI start-up"), so `precheck` reads the ``--config`` files and ``--a.b value`` flags itself and
reports, in well under a second, what needs no import: an unknown key in the ``trainer``, ``data``
or ``model`` group (their accepted keys are read from the classes' ``__init__`` signatures with
`ast`, without importing them), a missing manifest, prompt, tokenizer, tower or ``--ckpt_path`` file, a hub id
for a tower, and a label column the manifest's header lacks. Anything it cannot judge is left to the full parser, so it never refuses
a command line that LightningCLI would accept (`tests/training/test_config_check.py` compares its
key sets with the real parser's).
"""

from __future__ import annotations

import ast
import copy
import csv
import difflib
import gzip
import importlib.util
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

import medalign
from medalign.paths import resolve_config, resolve_config_args

NO_MANIFEST_HELP = (
    "pass --data.manifest path/to/manifest.csv (the standard manifest format, see README 'Data'), "
    "or generate the embedded synthetic chest X-ray set with `medalign synth --out data/synthetic` "
    "and pass --data.manifest data/synthetic/manifest.csv"
)
KEY_HINT = "(`--print_config` lists every accepted key; `--model.help CLASS` the model's options)"
# The subcommands' top-level keys (LightningCLI's plus `checkpoint` and `evaluation`); `verbose` is
# validate/test's, `return_predictions` predict's.
TOP_LEVEL = frozenset({"config", "print_config", "seed_everything", "trainer", "model", "data", "optimizer",
                       "lr_scheduler", "ckpt_path", "weights_only", "checkpoint", "evaluation", "verbose",
                       "return_predictions"})
MODULE_CLASS = "medalign.training.module.ContrastiveModule"
WRAPPER_KEYS = frozenset({"class_path", "init_args", "dict_kwargs", "help"})


class ConfigKeyError(ValueError):
    """An unknown config key; `hint` replaces the generic "a bug?" line and the exit code is argparse's 2."""

    exit_code = 2
    hint = KEY_HINT


def _class_source(group: str) -> tuple[Path, str] | None:
    """The file and class name whose ``__init__`` defines a group's keys (found without importing it)."""
    if group == "trainer":
        spec = importlib.util.find_spec("lightning")  # the top-level package only: nothing is executed
        if spec is None or spec.origin is None:
            return None
        return Path(spec.origin).parent / "pytorch" / "trainer" / "trainer.py", "Trainer"
    package = Path(medalign.__file__).parent
    if group == "data":
        return package / "training" / "datamodule.py", "MedAlignDataModule"
    if group == "model":
        return package / "training" / "module.py", "ContrastiveModule"
    return None


@lru_cache(maxsize=None)
def init_parameters(group: str) -> frozenset[str] | None:
    """The ``__init__`` parameter names of the class behind ``trainer``, ``data`` or ``model`` (None: unknown)."""
    source = _class_source(group)
    if source is None or not source[0].is_file():
        return None
    path, name = source
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == name:
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is None:
                return None
            args = init.args
            return frozenset(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.arg != "self")
    return None


def _flatten(tree: Any, prefix: str = "") -> Iterable[str]:
    """Dotted keys of a nested mapping, down to the first non-mapping value."""
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        yield dotted
        yield from _flatten(value, dotted + ".")


def _parse(args: list[str]) -> tuple[list[Path], dict[str, Any], list[tuple[str, Any]]]:
    """Config files, their merged content, and the ``--key value`` flags (in order) of a command line."""
    files: list[Path] = []
    merged: dict[str, Any] = {}
    flags: list[tuple[str, Any]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        key, has_value, value = arg.partition("=")
        takes_next = not has_value and i + 1 < len(args) and not args[i + 1].startswith("--")
        if key in ("--config", "-c") and (has_value or takes_next):
            path = Path(value if has_value else args[i + 1])
            if path.is_file():
                files.append(path)
                try:
                    with path.open(encoding="utf-8") as handle:
                        _merge(merged, yaml.safe_load(handle) or {})
                except yaml.YAMLError as error:  # its own message names the file, line and column
                    raise ValueError(f"config {path} is not valid YAML: {' '.join(str(error).split())}") from error
        elif key.startswith("--"):
            raw = value if has_value else (args[i + 1] if takes_next else None)
            try:
                parsed = yaml.safe_load(raw) if raw is not None else None
            except yaml.YAMLError:
                parsed = raw
            flags.append((key[2:].rstrip("+"), parsed))
        i += 1 if has_value or not takes_next else 2
    return files, merged, flags


def _merge(into: dict[str, Any], update: Any) -> None:
    if not isinstance(update, dict):
        return
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _unknown(key: str, class_paths: dict[str, Any]) -> bool:
    """Whether `key` (dotted, from a config or flag) is certainly rejected by the parser."""
    parts = key.split(".")
    if parts[0] not in TOP_LEVEL:
        return True
    group = parts[0]
    if len(parts) < 2 or group not in ("trainer", "data", "model"):
        return False
    name = parts[1]
    if name in WRAPPER_KEYS:
        if name != "init_args" or len(parts) < 3:
            return False
        name = parts[2]
    if group == "model" and class_paths.get("model") not in (MODULE_CLASS, "ContrastiveModule"):
        return False  # another model class (or an override file without one): the full parser knows its options
    if group == "data" and class_paths.get("data") is not None:
        return False
    known = init_parameters(group)
    if known is None or name in known:
        return False
    return not (group == "model" and name in legacy_keys())  # old flat keys: `migrate_cli_args` rewrites them


@lru_cache(maxsize=None)
def legacy_keys() -> frozenset[str]:
    """`medalign.methods.legacy.LEGACY_KEYS`, read with `ast` (importing it loads the towers: seconds)."""
    package = Path(medalign.__file__).parent
    names: set[str] = set()
    for node in ast.walk(ast.parse((package / "models" / "spec.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == "ModelSpec":
            names |= {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    for node in ast.parse((package / "methods" / "legacy.py").read_text(encoding="utf-8")).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id in ("OBJECTIVE_DEFAULTS", "DROPPED") and isinstance(node.value, ast.Dict):
            names |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return frozenset(names)


@lru_cache(maxsize=None)
def _known_keys() -> tuple[str, ...]:
    keys = list(TOP_LEVEL)
    for group, form in (("trainer", "trainer.{}"), ("data", "data.{}"), ("model", "model.init_args.{}")):
        keys += [form.format(name) for name in init_parameters(group) or ()]
    return tuple(keys)


def _spelled(key: str) -> str:
    """``model.lrr`` → ``model.init_args.lrr`` (the form the suggestions use)."""
    parts = key.split(".")
    if parts[0] == "model" and len(parts) > 1 and parts[1] not in WRAPPER_KEYS:
        return ".".join(["model", "init_args", *parts[1:]])
    return key


def where(key: str, config_files: list[Path], argv: list[str]) -> str | None:
    """``command line`` when a flag sets `key`, else ``file:line`` of the last config file that sets its last component."""
    if any(_spelled(arg.lstrip("-").split("=", 1)[0].rstrip("+")) == _spelled(key) for arg in argv if arg.startswith("--")):
        return "command line"
    leaf = key.rsplit(".", 1)[-1]
    pattern = re.compile(rf"^\s*(?:-\s*)?{re.escape(leaf)}\s*:|[{{,]\s*{re.escape(leaf)}\s*:")
    for path in reversed(config_files):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if pattern.search(line):
                return f"{path}:{number}"
    return None


def unknown_key_message(key: str, known: Iterable[str], config_files: list[Path], argv: list[str]) -> str:
    """``unknown config key data.batchsize (cfg.yaml:3); did you mean data.batch_size?``"""
    place = where(key, config_files, argv)
    guess = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return (f"unknown config key {key}" + (f" ({place})" if place else "")
            + (f"; did you mean {guess[0]}?" if guess else ""))


def read_header(manifest: Path) -> list[str]:
    """A CSV manifest's column names (plain or gzip), read without pandas."""
    opener = gzip.open if manifest.suffix == ".gz" else open
    with opener(manifest, "rt", encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def check_label_columns(manifest: Path, label_columns: list[str]) -> None:
    """Name a ``data.label_columns`` entry the manifest's header lacks (with the closest column), before anything else.

    Only the header of a CSV is read; other formats are checked when the manifest is read.
    """
    if not label_columns or manifest.suffix not in (".csv", ".gz") or not manifest.is_file():
        return
    columns = read_header(manifest)
    for name in label_columns:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; its columns are {columns}"
            raise ValueError(f"data.label_columns: {name!r} is not a column of {manifest}{hint}")


def check_manifest(manifest: str | None, synthetic: Any, data_format: str) -> None:
    """A missing manifest is an error unless the config's own ``data.synthetic`` generates it there."""
    if manifest is None or data_format != "manifest" or Path(manifest).exists():
        return
    if isinstance(synthetic, dict):
        home = synthetic.get("manifest")
        if home is None or Path(home).resolve() == Path(manifest).resolve():
            return  # the data module generates it (and says so)
    raise FileNotFoundError(f"manifest {manifest} does not exist: {NO_MANIFEST_HELP}")


def precheck(argv: list[str]) -> None:
    """Check a LightningCLI command line (``fit --config … --data.x …``) for what needs no import.

    Raises:
        ConfigKeyError: an unknown key, naming its file and line and the closest known key.
        FileNotFoundError: a missing config, manifest, prompt, tokenizer, tower or checkpoint file.
        ValueError: a label column the manifest lacks; a hub image model.
    """
    args = resolve_config_args(argv[1:])
    if any(a in ("-h", "--help") or a.endswith(".help") for a in args):
        return
    files, merged, flags = _parse(args)
    class_paths = {g: (merged.get(g) or {}).get("class_path") if isinstance(merged.get(g), dict) else None
                   for g in ("model", "data")}
    whole = {key for key, _ in flags if "." not in key}  # `--model Foo` / `--data cfg.yaml`: the parser's business
    for key, value in flags:
        if "." in key and key.split(".")[0] in ("model", "data") and key.split(".")[1] == "class_path":
            class_paths[key.split(".")[0]] = value
    keys = [*((key, False) for key in _flatten(merged)), *((key, True) for key, _ in flags)]
    for key, flag in keys:
        if key.split(".")[0] in whole - {"config"} and "." in key:
            continue
        if flag and any(known.startswith(key) for known in _known_keys()):
            continue  # argparse takes a flag's unambiguous prefix (`--trainer.max_epoch` is max_epochs)
        if _unknown(key, class_paths):
            raise ConfigKeyError(unknown_key_message(_spelled(key), _known_keys(), files, argv))
    if "data" in whole or class_paths["data"] is not None:
        return
    data: dict[str, Any] = {}
    _merge(data, copy.deepcopy(merged.get("data")))
    for key, value in flags:  # `--data.synthetic.manifest x` lands in data["synthetic"]["manifest"]
        if key.startswith("data."):
            *parents, leaf = key.split(".")[1:]
            node = data
            for name in parents:
                if not isinstance(node.get(name), dict):
                    node[name] = {}
                node = node[name]
            node[leaf] = value
    manifest = data.get("manifest")
    check_manifest(None if manifest is None else str(manifest), data.get("synthetic"), str(data.get("format", "manifest")))
    if manifest is not None and Path(str(manifest)).is_file():
        labels = data.get("label_columns")
        check_label_columns(Path(str(manifest)), [str(x) for x in labels] if isinstance(labels, list) else [])
        if str(data.get("format", "manifest")) == "manifest":
            check_tokenizer(data.get("tokenizer") or Path(str(manifest)).parent / "tokenizer")
    if data.get("prompts"):
        resolve_config(str(data["prompts"]), (".json",))
    if str(class_paths["model"]).startswith(("medalign.", "ContrastiveModule")) and "model" not in whole:
        check_towers(_spec_values(merged, flags))
    check_ckpt_path(next((value for key, value in reversed(flags) if key == "ckpt_path"), merged.get("ckpt_path")))


def check_tokenizer(path: Any) -> None:
    """`load_tokenizer`'s rule: a local folder (or an ``open_clip:`` spec); default ``<manifest folder>/tokenizer``."""
    if str(path).startswith("open_clip:") or Path(str(path)).is_dir():
        return
    raise FileNotFoundError(
        f"tokenizer folder {path} does not exist: build one from your manifest's reports with "
        "`medalign tokenizer MANIFEST --out DIR` (and pass --data.tokenizer DIR), or, for a pretrained text tower, pass "
        "its local model folder (--data.tokenizer /path/to/Bio_ClinicalBERT); hub ids are not downloaded")


TOWER_KEYS = ("text_model", "image_model", "image_weights")


def _spec_values(merged: dict[str, Any], flags: list[tuple[str, Any]]) -> dict[str, Any]:
    """The tower settings of ``model.init_args.model`` (config files, then flags; old flat spellings too)."""
    init = ((merged.get("model") or {}).get("init_args") or {}) if isinstance(merged.get("model"), dict) else {}
    spec = {k: init[k] for k in TOWER_KEYS if isinstance(init, dict) and k in init}  # old flat keys
    nested = init.get("model") if isinstance(init, dict) else None
    spec.update({k: nested[k] for k in TOWER_KEYS if isinstance(nested, dict) and k in nested})
    for key, value in flags:
        parts = key.split(".")
        if parts[0] == "model" and parts[-1] in TOWER_KEYS:
            spec[parts[-1]] = value
    return spec


def check_towers(spec: dict[str, Any]) -> None:
    """The towers' local files (medalign never downloads): the rules of `TextEncoder` and `ImageEncoder`, checked early."""
    text = spec.get("text_model")
    if text is not None and not (Path(str(text)) / "config.json").is_file():
        raise FileNotFoundError(
            f"model.init_args.model.text_model: {str(text)!r} is not a local folder with a config.json; medalign loads "
            "text towers from local directories only, hub ids are not downloaded: download e.g. Bio_ClinicalBERT "
            "elsewhere, copy the folder here and pass --model.init_args.model.text_model /path/to/folder "
            "--data.tokenizer /path/to/folder")
    image = spec.get("image_model")
    if isinstance(image, str) and image.startswith(("hf-hub:", "hf_hub:")):
        raise ValueError(
            f"model.init_args.model.image_model {image!r} would be fetched from the Hugging Face hub; medalign runs "
            "offline: pass the timm architecture name (e.g. vit_base_patch16_224) as --model.init_args.model.image_model "
            "and the downloaded weights file as --model.init_args.model.image_weights")
    weights = spec.get("image_weights")
    if weights is not None and not Path(str(weights)).is_file():
        raise FileNotFoundError(f"image tower weights not found: {weights} (model.init_args.model.image_weights)")


def check_ckpt_path(ckpt_path: Any) -> None:
    """A ``--ckpt_path`` file that does not exist (``last``, ``best``, … and URLs are left to Lightning)."""
    if ckpt_path is None or str(ckpt_path).startswith(("last", "best", "hpc", "registry")) or "://" in str(ckpt_path):
        return
    if not Path(str(ckpt_path)).exists():
        raise FileNotFoundError(f"checkpoint not found: {ckpt_path} (--ckpt_path)")


if __name__ == "__main__":  # pragma: no cover - `python -m medalign.training.config_check fit --config …`
    precheck(sys.argv[1:])
