"""The `medalign` console script: Lightning's subcommands plus our own, each imported only when used.

Nothing heavy is imported at start-up, so ``medalign --help`` and ``medalign prepare --help``
answer without loading torch (see ``scripts/bench_cli_startup.py``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# Subcommands beyond Lightning's: name → (module with `run(argv)`, one-line help).
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("medalign.commands.synth", "generate the synthetic chest X-ray dataset"),
    "demo": ("medalign.commands.demo", "train + evaluate the CPU demo"),
    "geometry": ("medalign.commands.geometry", "geometry table and pictures for a checkpoint"),
    "gap-sweep": ("medalign.commands.gap_sweep", "λ-shift + linear-probe study (modality gap)"),
    "cone-effect": ("medalign.commands.cone_effect", "cone-effect paper grid: datasets × backbones gap-sweeps"),
    "prepare": ("medalign.commands.prepare", "real dataset in its published layout → manifest"),
    "resize": ("medalign.commands.resize", "resized copy (short side N) of any manifest's images and heatmaps"),
    "saliency": ("medalign.commands.saliency", "saliency–gaze agreement (NSS, CC, KLD, SIM, AUC) of a checkpoint"),
    "benchmark": ("medalign.commands.benchmark", "methods × seeds × data fractions study, resumable"),
    "export": ("medalign.commands.export", "checkpoint → open_clip folder (local-dir: / hf-hub: layout) + model card"),
    "shard": ("medalign.commands.shard", "manifest → streaming shards per split (litdata) for data.format: shards"),
}


def command(name: str) -> Callable[[list[str]], None]:
    """The `run(argv)` of an extra subcommand (imports its module)."""
    return importlib.import_module(EXTRA_COMMANDS[name][0]).run


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch ``medalign <subcommand> ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in EXTRA_COMMANDS:
        command(argv[0])(argv[1:])
    elif argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        from medalign.training.cli import cli_main

        cli_main(argv)
    else:
        _usage(ok=bool(argv) and argv[0] in ("-h", "--help"))


def _usage(ok: bool) -> None:
    lines = ["usage: medalign <command> [options]", "", "Training and evaluation (LightningCLI; `medalign fit --help`):"]
    lines += [f"  {name:<10} Lightning's {name} with medalign's model, data and evaluation" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "medalign commands (`medalign <command> -h`):"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in EXTRA_COMMANDS.items()]
    print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
    sys.exit(0 if ok else 2)
