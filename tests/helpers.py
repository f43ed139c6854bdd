"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from medalign.training.cli import MedAlignCLI, cli_main

TINY = str(Path(__file__).parent / "conf" / "tiny.yaml")


def fit_tiny(tmp_path: Path, synthetic_dir: Path, *extra: str, config: str = TINY) -> MedAlignCLI:
    """`fit` on the synthetic fixture without loggers, checkpointing every 3 steps as step{N}.ckpt.

    An option of those defaults given in `extra` (``--checkpoint.monitor val/loss``) replaces it:
    the defaults used to follow `extra` on the command line and silently won.
    """
    defaults = {
        "--trainer.default_root_dir": str(tmp_path),
        "--trainer.logger": "false",
        "--checkpoint.dirpath": str(tmp_path / "ckpt"),
        "--checkpoint.monitor": "null",
        "--checkpoint.every_n_train_steps": "3",
        "--checkpoint.save_top_k": "-1",
        "--checkpoint.filename": "step{step}",
    }
    given = {arg.split("=", 1)[0] for arg in extra if arg.startswith("--")}
    kept = [part for key, value in defaults.items() if key not in given for part in (key, value)]
    return cli_main(["fit", "--config", config, *extra, "--data.manifest", str(synthetic_dir / "manifest.csv"), *kept])
