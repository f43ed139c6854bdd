"""Offline-safe weight loading: our own checkpoints into a model, and the offline guard."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def require_offline_ok(what: str, option: str, host: str = "huggingface.co", timeout: float = 3.0) -> None:
    """Fail fast instead of letting a hub download retry for minutes on an offline machine.

    Raises when ``HF_HUB_OFFLINE=1`` / ``MEDALIGN_OFFLINE=1`` is set or `host` cannot be reached
    within `timeout` seconds.
    """
    message = f"{what} would be downloaded from a model hub, but {{}}; pass a local path with {option}"
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("MEDALIGN_OFFLINE") == "1":
        raise RuntimeError(message.format("this run is offline (HF_HUB_OFFLINE=1)"))
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as err:
        raise RuntimeError(message.format(f"{host} is unreachable ({err})")) from err


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read weights from a Lightning checkpoint, a torch state dict or a safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    return obj


def load_weights(model: nn.Module, path: str | Path, prefix: str = "model.", strict: bool = False) -> tuple[list[str], list[str]]:
    """Load weights only (no optimizer or schedule) into `model`, reporting partial matches.

    Args:
        model: the module to fill.
        path: a checkpoint or weights file.
        prefix: stripped from keys that carry it (a LightningModule stores ours under ``model.``).
        strict: raise when any key is missing or unexpected.

    Returns:
        The missing and unexpected keys.
    """
    state = load_state_dict_file(path)
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = model.state_dict()
    shape_mismatch = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if shape_mismatch:
        details = ", ".join(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shape_mismatch[:5])
        raise ValueError(f"weights in {path} do not fit the model ({len(shape_mismatch)} shape mismatches): {details}")
    result = model.load_state_dict(state, strict=strict)
    if result.missing_keys:
        log.warning("init_from %s: %d missing keys (kept at init), e.g. %s", path, len(result.missing_keys), result.missing_keys[:5])
    if result.unexpected_keys:
        log.warning("init_from %s: %d unexpected keys ignored, e.g. %s", path, len(result.unexpected_keys), result.unexpected_keys[:5])
    return list(result.missing_keys), list(result.unexpected_keys)
