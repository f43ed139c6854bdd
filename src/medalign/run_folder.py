"""The one owner of a run's folder layout, of atomic file writes and of file hashes.

A training run's folder (``runs/<name>/version_N`` with loggers, ``--trainer.default_root_dir``
without; one benchmark cell's folder)::

    config.yaml            the resolved config (Lightning's SaveConfigCallback)
    checkpoints/           last.ckpt, epoch=*.ckpt
    eval/<timestamp>/      results.json / .csv / .md, bad_rows.csv, plots (`medalign test`)
    bad_rows.csv           rows a ``skip`` data module left out (bad_rows.rank<r>.csv per process)
    geometry/epoch_NNN.png geometry pictures (`GeometryMetrics`)
    saliency_<split>/      `medalign saliency` on a checkpoint of this run
    geometry_<split>/      `medalign geometry` on a checkpoint of this run

Commands that take a checkpoint write into the run folder it belongs to (`RunFolder.of_checkpoint`):
``medalign test --ckpt_path …/version_N/checkpoints/last.ckpt`` into ``…/version_N/eval/<timestamp>``.

Every other module asks `RunFolder` for these paths instead of spelling them; every file that
must never be seen half-written goes through `atomic_path`; every content hash of a file is
`file_sha256`. Standard library only: importable from anywhere without cost.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, memoised per (path, size, mtime) within the process."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(chunk):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def _temporary_sibling(target: Path) -> Path:
    """A unique hidden name in `target`'s folder that keeps its suffix (``np.save``/PIL read it)."""
    return target.with_name(f".{target.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{target.suffix}")


@contextmanager
def atomic_path(target: str | Path, fsync: bool = False) -> Iterator[Path]:
    """Write-then-rename: yields a temporary path beside `target`; on success it replaces `target`.

    Readers see either the old file or the complete new one, never a partial one; on any error the
    temporary file is removed and `target` is left as it was. The parent folder is created.

    Args:
        target: the file to (re)write.
        fsync: flush the temporary file to disk before the rename (checkpoints).

    Example:
        >>> with atomic_path(folder / "manifest.csv") as tmp:  # doctest: +SKIP
        ...     frame.to_csv(tmp, index=False)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(target)
    try:
        yield tmp
        if fsync:
            with tmp.open("rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: str | Path, text: str) -> Path:
    """`atomic_path` for a text file; returns `target`."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def new_timestamped_folder(root: str | Path) -> Path:
    """``root/<YYYYmmdd-HHMMSS>`` (``-1``, ``-2``, ... appended when taken); not created."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, i = root / stamp, 1
    while folder.exists():
        folder, i = root / f"{stamp}-{i}", i + 1
    return folder


class RunFolder:
    """The paths of one run's folder (see the module docstring for the layout).

    Args:
        root: the run folder.
    """

    CONFIG = "config.yaml"
    CHECKPOINTS = "checkpoints"
    LAST = "last.ckpt"
    EVAL = "eval"
    RESULTS = "results.json"
    BAD_ROWS = "bad_rows.csv"
    GEOMETRY = "geometry"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    @classmethod
    def of_trainer(cls, trainer: Any) -> "RunFolder":
        """The folder a trainer writes its run into: ``trainer.log_dir``, else ``default_root_dir``."""
        return cls(trainer.log_dir or trainer.default_root_dir)

    @property
    def config(self) -> Path:
        return self.root / self.CONFIG

    @property
    def checkpoints(self) -> Path:
        return self.root / self.CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / self.LAST

    def last_checkpoints(self) -> list[Path]:
        """``checkpoints/last*.ckpt`` files (Lightning adds ``-v1`` ... when a name is taken)."""
        return [c for c in self.checkpoints.glob("last*.ckpt") if c.is_file()]

    @property
    def eval_root(self) -> Path:
        return self.root / self.EVAL

    def new_eval_folder(self) -> Path:
        """A fresh ``eval/<timestamp>`` folder path (not created)."""
        return new_timestamped_folder(self.eval_root)

    def eval_results(self) -> list[Path]:
        """Every ``eval/<timestamp>/results.json``, oldest first."""
        return sorted(self.eval_root.glob(f"*/{self.RESULTS}"), key=lambda p: p.stat().st_mtime)

    def bad_rows(self, rank: int | None = None) -> Path:
        """``bad_rows.csv``, or ``bad_rows.rank<r>.csv`` for process `rank` of several."""
        name = Path(self.BAD_ROWS)
        return self.root / (name.name if rank is None else f"{name.stem}.rank{rank}{name.suffix}")

    def geometry_plot(self, epoch: int) -> Path:
        return self.root / self.GEOMETRY / f"epoch_{epoch:03d}.png"

    def analysis(self, kind: str, split: str) -> Path:
        """``<kind>_<split>/``: the output folder of an analysis command (``saliency``, ``geometry``) on one split."""
        return self.root / f"{kind}_{split}"

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> "RunFolder":
        """The run a checkpoint belongs to: the folder holding its ``config.yaml`` (beside it or one up),
        else the folder above ``checkpoints/``, else the checkpoint's own folder."""
        config = cls.config_of_checkpoint(checkpoint)
        if config is not None:
            return cls(config.parent)
        folder = Path(checkpoint).parent
        return cls(folder.parent if folder.name == cls.CHECKPOINTS else folder)

    @classmethod
    def config_of_checkpoint(cls, checkpoint: str | Path) -> Path | None:
        """The resolved config of the run a checkpoint belongs to: beside it, or one folder up
        (a checkpoint under ``checkpoints/``); None when neither exists."""
        checkpoint = Path(checkpoint)
        for folder in (checkpoint.parent, checkpoint.parent.parent):
            if (folder / cls.CONFIG).is_file():
                return folder / cls.CONFIG
        return None
