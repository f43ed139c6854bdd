"""A new `fit` never writes into a folder that holds another run's ``last.ckpt``.

With a logger, each run gets its own ``runs/<name>/version_N``. Without one
(``--trainer.logger false``), or with a fixed ``--checkpoint.dirpath``, two unrelated runs would
share ``checkpoints/last.ckpt`` (Lightning then writes ``last-v1.ckpt`` beside it, and
``--ckpt_path last`` resumes the wrong one) and overwrite ``config.yaml``. Such a folder is
refused unless the run resumes it (``--ckpt_path last`` or a path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medalign.run_folder import RunFolder


def checkpoint_folder(trainer: Any, dirpath: str | None) -> Path | None:
    """Where this fit's checkpoints go when that folder can be shared by runs: an explicit `dirpath`, or
    ``<default_root_dir>/checkpoints`` without a logger; None when a logger gives the run its own version folder."""
    if dirpath:
        return Path(dirpath)
    if not trainer.loggers:
        return RunFolder(trainer.default_root_dir).checkpoints
    return None


def check_fresh_run_folder(trainer: Any, dirpath: str | None, ckpt_path: str | None) -> None:
    """Refuse a new (non-resumed) fit whose checkpoint folder already holds a ``last*.ckpt``.

    Raises:
        FileExistsError: naming the file and the two ways out.
    """
    if ckpt_path:
        return
    folder = checkpoint_folder(trainer, dirpath)
    if folder is None or not folder.is_dir():
        return
    taken = sorted(p for p in folder.glob("last*.ckpt") if p.is_file())
    if taken:
        raise FileExistsError(
            f"{taken[0]} belongs to an earlier run; a new run here would overwrite its config.yaml and mix its "
            "checkpoints. Resume it with --ckpt_path last, or give this run its own folder "
            "(--trainer.default_root_dir runs/<name>, or keep the default logger for runs/<name>/version_N)"
        )
