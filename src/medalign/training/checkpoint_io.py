"""Atomic checkpoint writes: a crash or a full disk mid-save never leaves a truncated ``last.ckpt``."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from medalign.models.checkpoint import load_checkpoint_file
from medalign.run_folder import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the target folder, fsync, then `os.replace` it into place
    (`medalign.run_folder.atomic_path`).

    The previous file at the target stays intact until the new one is complete; the
    temporary file is removed on any failure; the result gets the permissions a plain
    ``open()`` gives (``0666 & ~umask``).
    """

    def __init__(self, save: Callable[[dict[str, Any], Any], None] = torch.save) -> None:
        super().__init__()
        self._save = save  # injectable for fault-injection tests

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        target = Path(path)
        try:
            with atomic_path(target, fsync=True) as tmp, tmp.open("wb") as handle:
                self._save(checkpoint, handle)
        except BaseException as err:
            if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OSError(
                    err.errno,
                    f"disk full while saving checkpoint {target} ({err.strerror}); the previous file there, if any, "
                    f"is intact and the partial file was removed. Free space on {target.parent} (or point "
                    "--checkpoint.dirpath elsewhere) and resume with --ckpt_path last",
                ) from err
            if isinstance(err, RuntimeError) and "write" in str(err) and _disk_full(target.parent):
                raise OSError(errno.ENOSPC, f"disk full while saving checkpoint {target}: {err}") from err
            raise

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        """Read through `load_checkpoint_file`: a damaged or remote file is named, not unpickled."""
        return load_checkpoint_file(path)  # on CPU; Lightning moves the tensors to the model's device


def _disk_full(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False
