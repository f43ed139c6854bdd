"""Old configs and checkpoints: the flat ``model.init_args.*`` keys of medalign ≤ 0.x, mapped to objectives.

Before objectives were classes, `ContrastiveModule` took the 14 `ModelSpec` fields and 21 method
switches (``loss: siglip``, ``dacl_weight`` …) as flat arguments. `migrate_model_args` maps such a
dict to the current form — ``model: {...ModelSpec...}`` plus ``objectives: [{class_path, init_args}]``
— with a `DeprecationWarning` that shows the new spelling; `migrate_cli_args` does the same for
``--config`` files and ``--model.*`` flags before LightningCLI parses them. Checkpoints written
before the change store the flat keys; the module migrates them when it is rebuilt.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from medalign.models.spec import ModelSpec

SPEC_KEYS = frozenset(f.name for f in fields(ModelSpec))
# the old method switches and their defaults (all terms off)
OBJECTIVE_DEFAULTS: dict[str, Any] = {
    "loss": "infonce", "init_logit_bias": -10.0,
    "align_weight": 0.0, "centroid_uniformity_weight": 0.0, "centroid_uniformity_t": 2.0, "gap_warmup_fraction": 0.0,
    "dacl_weight": 0.0, "dacl_range": (0.9, 1.0), "m3mix_weight": 0.0, "m3mix_beta": 0.5, "mix_seed": 0,
    "image_freeze": "none", "text_freeze": "none", "slip_weight": 0.0, "slip_temperature": 0.1, "slip_dim": 128,
    "mlm_weight": 0.0, "mlm_probability": 0.15, "local_weight": 0.0, "local_chunk_size": 64,
}
DROPPED = {  # removed options: what they did
    "local_method": "'filip' was its only choice (FILIP objective)",
    "zero_shot_aggregation": "validation's zero-shot uses 'embedding'; the `test` zero-shot task keeps its own setting",
}
LEGACY_KEYS = SPEC_KEYS | set(OBJECTIVE_DEFAULTS) | set(DROPPED)
_M = "medalign.methods."


def legacy_objectives(flat: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objectives the old switches in `flat` turned on, as ``{class_path, init_args}``, in the old order."""
    hp = {**OBJECTIVE_DEFAULTS, **{k: v for k, v in flat.items() if k in OBJECTIVE_DEFAULTS}}
    seed, out = hp["mix_seed"], []
    if str(hp["loss"]).lower() not in ("infonce", "siglip"):
        raise ValueError(f"model.loss must be 'infonce' or 'siglip', got {hp['loss']!r} (now: the SigLIP objective)")
    if str(hp["loss"]).lower() == "siglip":
        out.append((_M + "siglip.SigLIP", {"bias_init": hp["init_logit_bias"]}))
    if hp["align_weight"] or hp["centroid_uniformity_weight"]:
        out.append((_M + "gap_closing.GapClosing", {
            "align_weight": hp["align_weight"], "uniformity_weight": hp["centroid_uniformity_weight"],
            "uniformity_t": hp["centroid_uniformity_t"], "warmup_fraction": hp["gap_warmup_fraction"]}))
    if hp["dacl_weight"]:
        out.append((_M + "dacl.DACL", {"weight": hp["dacl_weight"], "weight_range": list(hp["dacl_range"]), "seed": seed}))
    if hp["m3mix_weight"]:
        out.append((_M + "m3mix.M3Mix", {"weight": hp["m3mix_weight"], "beta": hp["m3mix_beta"], "seed": seed}))
    if hp["slip_weight"]:
        out.append((_M + "slip.SLIP", {"weight": hp["slip_weight"], "temperature": hp["slip_temperature"], "dim": hp["slip_dim"]}))
    if hp["mlm_weight"]:
        out.append((_M + "mlm.MLM", {"weight": hp["mlm_weight"], "probability": hp["mlm_probability"], "seed": seed}))
    if hp["local_weight"]:
        out.append((_M + "filip.FILIP", {"weight": hp["local_weight"], "chunk_size": hp["local_chunk_size"]}))
    if str(hp["image_freeze"]) not in ("none", "0", "None") or str(hp["text_freeze"]) not in ("none", "0", "None"):
        out.append((_M + "freeze.Freeze", {"image": hp["image_freeze"], "text": hp["text_freeze"]}))
    return [{"class_path": path, "init_args": args} for path, args in out]


def migrate_model_args(args: Mapping[str, Any], source: str = "model.init_args", warn: bool = True) -> dict[str, Any]:
    """Map old flat `ContrastiveModule` arguments to ``model`` + ``objectives``; other keys unchanged.

    Args:
        args: init arguments or saved hyper-parameters, old or new form.
        source: where they came from, named in the warning.
        warn: emit a `DeprecationWarning` with the new spelling when old keys were found.

    Returns:
        The arguments in the current form (a new dict; `args` itself is not changed).
    """
    old = {k: v for k, v in args.items() if k in LEGACY_KEYS}
    if not old:
        return dict(args)
    new = {k: v for k, v in args.items() if k not in LEGACY_KEYS}
    spec = {k: v for k, v in old.items() if k in SPEC_KEYS}
    if spec:
        new["model"] = {**spec, **dict(new.get("model") or {})}
    if any(k in OBJECTIVE_DEFAULTS for k in old):
        new["objectives"] = list(new.get("objectives") or []) + legacy_objectives(old)
    if warn:
        shown = {k: new[k] for k in ("model", "objectives") if k in new}
        dropped = "".join(f"; {k} was removed: {DROPPED[k]}" for k in old if k in DROPPED)
        warnings.warn(
            f"{source}: the flat keys {sorted(old)} are deprecated; write them as\n"
            + yaml.safe_dump(shown, sort_keys=False, default_flow_style=None) + dropped.lstrip("; "),
            DeprecationWarning, stacklevel=3,
        )
    return new


def comparable_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A module's hyper-parameters (old or new form), flat: the `ModelSpec` fields at the top (resume checks)."""
    from medalign.methods.base import build_objective

    new = migrate_model_args(hparams, warn=False)
    spec = asdict(ModelSpec.from_hparams({"model": new.pop("model", None) or {}}))  # defaults filled in
    new["objectives"] = [build_objective(o).config() for o in new.get("objectives") or []]
    return {**new, **spec}


def migrate_cli_args(args: list[str]) -> list[str]:
    """Rewrite old ``--config`` files and ``--model.<key>`` flags of a LightningCLI command line.

    A config file with old keys is replaced by its migrated YAML text (jsonargparse takes a
    config as a path or as text); ``--model.<spec field>`` becomes ``--model.init_args.model.<field>``;
    old objective flags become objectives (replacing the list when an old config set one,
    appended otherwise). Each rewrite warns with the new spelling.
    """
    out: list[str] = []
    seen: dict[str, Any] = {}  # old objective keys of old configs so far: later configs extend them
    flags: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        key, has_value, value = arg.partition("=")
        takes_next = not has_value and i + 1 < len(args)
        if key == "--config" and (has_value or takes_next):
            path = value if has_value else args[i + 1]
            out += ["--config", _migrate_config(path, seen)]
            i += 1 if has_value else 2
            continue
        name = _legacy_flag(key)
        if name is not None and (has_value or takes_next):
            value = value if has_value else args[i + 1]
            i += 1 if has_value else 2
            if name in SPEC_KEYS:
                warnings.warn(f"{key} is deprecated; write --model.init_args.model.{name}", DeprecationWarning, stacklevel=2)
                out += [f"--model.init_args.model.{name}", value]
            elif name in OBJECTIVE_DEFAULTS:
                flags[name] = yaml.safe_load(value)
            else:
                warnings.warn(f"{key} was removed and is ignored: {DROPPED[name]}", DeprecationWarning, stacklevel=2)
            continue
        out.append(arg)
        i += 1
    if flags:
        objectives = legacy_objectives({**seen, **flags})
        warnings.warn(f"the flags {sorted(flags)} are deprecated; write model.init_args.objectives:\n"
                      + yaml.safe_dump(objectives, sort_keys=False, default_flow_style=None), DeprecationWarning, stacklevel=2)
        if seen:
            out += ["--model.init_args.objectives", yaml.safe_dump(objectives, default_flow_style=True).strip()]
        else:
            for objective in objectives:
                out += ["--model.init_args.objectives+", yaml.safe_dump(objective, default_flow_style=True).strip()]
    return out


def _legacy_flag(key: str) -> str | None:
    """``--model.K`` / ``--model.init_args.K`` with an old key K → K, else None."""
    for prefix in ("--model.init_args.", "--model."):
        if key.startswith(prefix) and key[len(prefix):] in LEGACY_KEYS:
            return key[len(prefix):]
    return None


def _migrate_config(path: str, seen: dict[str, Any]) -> str:
    """A config file's path, or its migrated YAML text when its ``model`` section has old keys."""
    file = Path(path)
    if not file.is_file():
        return path
    config = yaml.safe_load(file.read_text()) or {}
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        return path
    nested = "init_args" in model or "class_path" in model
    init = dict(model.get("init_args") or {}) if nested else dict(model)
    if not any(k in LEGACY_KEYS for k in init):
        return path
    seen.update({k: v for k, v in init.items() if k in OBJECTIVE_DEFAULTS})
    with_history = {**seen, **init}
    migrated = migrate_model_args(with_history, source=str(file))
    migrated = {k: v for k, v in migrated.items() if k in init or k in ("model", "objectives")}
    config["model"] = {**model, "init_args": migrated} if nested else {"init_args": migrated}
    return yaml.safe_dump(config, sort_keys=False)
