"""Atomic, finite checkpoint writes.

A crash or a full disk mid-save never leaves a truncated ``last.ckpt``, and a checkpoint whose
weights or optimizer state hold a NaN or an infinity is never written (`non_finite_tensors`):
every save path — step-based, after validation, at epoch end, on SIGTERM, ``trainer.save_checkpoint``
— goes through `AtomicCheckpointIO.save_checkpoint`, so the previous good file stays in place.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from medalign.models.checkpoint import load_checkpoint_file
from medalign.run_folder import atomic_path


class NonFiniteCheckpointError(FloatingPointError):
    """A checkpoint about to be written holds non-finite weights or optimizer state."""


def _tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in nested dicts / lists / tuples, with a dotted name."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}.{i}" if prefix else str(i))


def non_finite_tensors(checkpoint: dict[str, Any]) -> list[str]:
    """Names of the floating tensors in ``state_dict`` and ``optimizer_states`` holding a NaN or ±inf.

    Args:
        checkpoint: a Lightning checkpoint dict (tensors on any device).

    Returns:
        e.g. ``["state_dict.model.image.proj.weight", "optimizer_states.0.state.3.exp_avg_sq"]``.
    """
    bad = []
    for key in ("state_dict", "optimizer_states"):
        for name, tensor in _tensors(checkpoint.get(key), key):
            if tensor.is_floating_point() or tensor.is_complex():
                if not bool(torch.isfinite(tensor).all()):
                    bad.append(name)
    return bad


def check_finite(checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse to write `checkpoint` to `path` when `non_finite_tensors` finds any.

    Raises:
        NonFiniteCheckpointError: naming the step, the file and the first tensors.
    """
    bad = non_finite_tensors(checkpoint)
    if bad:
        raise NonFiniteCheckpointError(
            f"not writing checkpoint {path}: {len(bad)} tensor(s) hold NaN or inf at global step "
            f"{checkpoint.get('global_step')} (e.g. {bad[:3]}); the previous file there, if any, is intact. The "
            "training diverged: lower model.lr, clip gradients (--trainer.gradient_clip_val 1.0) or use fp32, then "
            "resume with --ckpt_path last"
        )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the target folder, fsync, then `os.replace` it into place
    (`medalign.run_folder.atomic_path`).

    The previous file at the target stays intact until the new one is complete; the
    temporary file is removed on any failure; the result gets the permissions a plain
    ``open()`` would give (``0666 & ~umask``), not `tempfile`'s private 0600. A checkpoint
    with non-finite weights or optimizer state is refused (`check_finite`) before anything
    is written.
    """

    def __init__(self, save: Callable[[dict[str, Any], Any], None] = torch.save) -> None:
        super().__init__()
        self._save = save  # injectable for fault-injection tests

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        check_finite(checkpoint, path)
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
