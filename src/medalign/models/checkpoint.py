"""`load_checkpoint_file`: the one way medalign reads a checkpoint or weights file.

Every loader (``fit``/``test --ckpt_path``, ``model.init_from``, ``medalign geometry``,
``medalign gap-sweep``) goes through here, so a missing, empty, truncated or remote file
fails at start-up with its path and what to do, instead of a pickle traceback mid-run.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "load_checkpoint_file", "is_remote"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: the message names the file and the fix."""


def is_remote(path: str | Path) -> bool:
    """True for ``http(s)://`` (and other URL-scheme) paths, which we never unpickle."""
    text = str(path)
    return "://" in text and not text.startswith("file://")


def load_checkpoint_file(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Read a Lightning checkpoint, a torch state dict or a ``.safetensors`` file, validated.

    Loads with ``weights_only=True`` (no arbitrary code from a pickle); our checkpoints are
    written to satisfy it (`medalign.rng`).

    Args:
        path: local file.
        mmap: memory-map the tensors (cheap when only ``hyper_parameters`` are needed).

    Returns:
        The checkpoint dict (a safetensors file gives its tensors).

    Raises:
        CheckpointError: a remote path, an empty or damaged file, or one that holds no dict.
        FileNotFoundError: the file does not exist.
    """
    if is_remote(path):
        raise CheckpointError(
            f"remote checkpoint {path}: medalign loads local files only (a pickle from the network can run code); "
            "download it first (e.g. `curl -o model.ckpt URL`) and pass the local path"
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is damaged: it is empty (0 bytes), e.g. from a save cut short; "
                              "use an earlier checkpoint from the same folder")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        if isinstance(err, pickle.UnpicklingError) and "weights_only" in str(err):
            raise CheckpointError(
                f"checkpoint {path} holds objects other than tensors and plain values, which medalign does not "
                f"unpickle (weights_only=True): {str(err).splitlines()[0]}"
            ) from err
        raise CheckpointError(
            f"checkpoint {path} is damaged ({size} bytes; truncated or not a checkpoint): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}; use an earlier checkpoint from the same folder"
        ) from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint or state dict (found {type(obj).__name__})")
    return obj
