"""The `medalign` console script: Lightning's subcommands plus our own, each imported only when used.

Nothing heavy is imported at start-up, so ``medalign --help`` and ``medalign prepare --help``
answer without loading torch, and ``fit``/``test`` report a config key typo, a missing file or a
wrong label name before Lightning is imported (`medalign.training.config_check`; timings from
``scripts/bench_cli_startup.py`` in docs/performance.md).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable, Sequence

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

# Subcommands beyond Lightning's: name → (module with `run(argv)`, one-line help).
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("medalign.commands.synth", "generate the synthetic chest X-ray dataset (--testbed gaze: the gaze test bed)"),
    "testbed-info": ("medalign.commands.testbed_info", "what a manifest's reports, images and heatmaps carry"),
    "demo": ("medalign.commands.demo", "train + evaluate the CPU demo"),
    "geometry": ("medalign.commands.geometry", "geometry table and pictures for a checkpoint"),
    "gap-sweep": ("medalign.commands.gap_sweep", "λ-shift + linear-probe study (modality gap)"),
    "cone-effect": ("medalign.commands.cone_effect", "alias of `benchmark` for the cone-effect grid (benchmark/cone_effect.yaml)"),
    "prepare": ("medalign.commands.prepare", "real dataset in its published layout → manifest"),
    "resize": ("medalign.commands.resize", "resized copy (short side N) of any manifest's images and heatmaps"),
    "saliency": ("medalign.commands.saliency", "saliency–gaze agreement (NSS, CC, KLD, SIM, AUC) of a checkpoint"),
    "benchmark": ("medalign.commands.benchmark", "methods × seeds × data fractions study (or the cone-effect grid), resumable"),
    "export": ("medalign.commands.export", "checkpoint → open_clip folder (local-dir: / hf-hub: layout) + model card"),
    "shard": ("medalign.commands.shard", "manifest → streaming shards per split (litdata) for data.format: shards"),
    "tokenizer": ("medalign.commands.tokenizer", "WordPiece tokenizer from a manifest's train reports"),
}


def command(name: str) -> Callable[[list[str]], None]:
    """The `run(argv)` of an extra subcommand (imports its module)."""
    return importlib.import_module(EXTRA_COMMANDS[name][0]).run


# A user's mistake (a missing file, a bad value) is one line; a bug keeps its traceback.
USER_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, ValueError)
DEBUG_FLAG = "--debug"


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch ``medalign <subcommand> ...``; ``--debug`` anywhere shows tracebacks of user errors too."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if DEBUG_FLAG in argv:
        argv = [a for a in argv if a != DEBUG_FLAG]
        os.environ["MEDALIGN_DEBUG"] = "1"  # DDP ranks re-run argv without the flag; they inherit this
        sys.argv = [sys.argv[0], *argv]
    _show_progress_logs()
    try:
        _dispatch(argv)
    except USER_ERRORS as error:
        if os.environ.get("MEDALIGN_DEBUG", "") not in ("", "0"):
            raise
        hint = getattr(error, "hint", f"(a bug? rerun with {DEBUG_FLAG} for the traceback)")
        sys.stderr.write(f"medalign {argv[0]}: error: {one_line(error)}\n  {hint}\n")
        sys.exit(getattr(error, "exit_code", 1))


def _show_progress_logs() -> None:
    """medalign's INFO lines (generation announced, per-epoch summaries) go to stderr, like Lightning's."""
    import logging

    logger = logging.getLogger("medalign")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def one_line(error: BaseException) -> str:
    """The error's message on one line (no type name, no nested dumps beyond 600 characters)."""
    lines = [line.strip() for line in str(error).splitlines()]
    if any("Union subtypes" in line for line in lines):  # jsonargparse wraps the class's own error
        start = next((i for i, line in enumerate(lines) if line.startswith("Errors:")), -1) + 1
        lines = [line.removeprefix("- ") for line in lines[start:] if not line.startswith("Given value")
                 and "Expected a <class 'NoneType'>" not in line and not line.startswith("- Problem with given class_path")]
    text = " ".join(" ".join(lines).split())
    return text if len(text) <= 600 else text[:600] + " …"


def _dispatch(argv: list[str]) -> None:
    if argv and argv[0] in EXTRA_COMMANDS:
        command(argv[0])(argv[1:])
    elif argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        if os.environ.get("MEDALIGN_DEBUG", "") in ("", "0"):  # --debug: the full parser's own errors
            from medalign.training.config_check import precheck

            precheck(argv)  # key typos, missing files, label names: in < 1 s, before Lightning's import
        from medalign.training.cli import cli_main

        cli_main(argv)
    else:
        _usage(ok=bool(argv) and argv[0] in ("-h", "--help"))


def _usage(ok: bool) -> None:
    lines = ["usage: medalign <command> [options]", "", "Training and evaluation (LightningCLI; `medalign fit --help`):"]
    lines += [f"  {name:<12} Lightning's {name} with medalign's model, data and evaluation" for name in LIGHTNING_SUBCOMMANDS]
    lines += ["", "medalign commands (`medalign <command> -h`):"]
    lines += [f"  {name:<12} {text}" for name, (_, text) in EXTRA_COMMANDS.items()]
    print("\n".join(lines), file=sys.stdout if ok else sys.stderr)
    sys.exit(0 if ok else 2)
