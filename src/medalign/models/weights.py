"""Offline-safe weight loading: our own checkpoints into a model, and the offline guard."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medalign.models.checkpoint import load_checkpoint_file

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


def load_state_dict_file(path: str | Path | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Read weights from a Lightning checkpoint, a torch state dict or a safetensors file.

    An already loaded checkpoint or state dict (a mapping) is used as is: callers that read the
    file for its hyper-parameters pass it on instead of reading it again.
    """
    obj = path if isinstance(path, Mapping) else load_checkpoint_file(path)
    if "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (found {type(obj).__name__})")
    return obj


STRIPPED_PREFIXES = ("module.", "model.", "_orig_mod.")  # DDP, LightningModule, torch.compile


def strip_prefixes(state: dict[str, torch.Tensor], own: set[str]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (``module.``, ``model.``, ``_orig_mod.``, also nested) to match `own`.

    A prefix is stripped when that matches more of `own`, or while nothing matches yet.
    """
    while True:
        matched = len(own & state.keys())
        for prefix in STRIPPED_PREFIXES:
            stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if stripped and (len(own & stripped.keys()) > matched or matched == 0):
                state = stripped
                break
        else:
            return state


def load_weights(
    model: nn.Module, path: str | Path | Mapping[str, Any], strict: bool = False, min_match: float = 0.5
) -> tuple[list[str], list[str]]:
    """Load weights only (no optimizer or schedule) into `model`, reporting partial matches.

    Wrapper prefixes (``model.`` from a LightningModule, ``module.`` from DDP) are stripped
    first. A file that fills fewer than `min_match` of the model's tensors is refused with a
    key-match report: that is almost always the wrong file, not a partial initialisation.

    Args:
        model: the module to fill.
        path: a checkpoint or weights file, or one already loaded (`load_checkpoint_file`).
        strict: raise when any key is missing or unexpected.
        min_match: smallest share of the model's tensors the file must fill.

    Returns:
        The missing and unexpected keys.

    Raises:
        ValueError: shape mismatches, or fewer than `min_match` of the tensors matched.
    """
    own = model.state_dict()
    state = strip_prefixes(load_state_dict_file(path), set(own))
    if isinstance(path, Mapping):
        path = "the given checkpoint"
    matched = own.keys() & state.keys()
    if len(matched) < min_match * len(own) or (own and not matched):
        file_keys = sorted(state)[:3]
        model_keys = sorted(set(own) - matched)[:3]
        raise ValueError(
            f"weights in {path} match {len(matched)} of the model's {len(own)} tensors (file has {len(state)}; "
            f"need ≥ {min_match:.0%}). File keys look like {file_keys}, model keys like {model_keys}: "
            "is this a checkpoint of this architecture (model preset / image_model / embed_dim)?"
        )
    shape_mismatch = [k for k in sorted(matched) if own[k].shape != state[k].shape]
    if shape_mismatch:
        details = ", ".join(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in shape_mismatch[:5])
        raise ValueError(f"weights in {path} do not fit the model ({len(shape_mismatch)} shape mismatches): {details}")
    result = model.load_state_dict(state, strict=strict)
    log.info("weights %s: %d of %d model tensors loaded", path, len(matched), len(own))
    if result.missing_keys:
        log.warning("weights %s: %d missing keys (kept at init), e.g. %s", path, len(result.missing_keys), result.missing_keys[:5])
    if result.unexpected_keys:
        log.warning("weights %s: %d unexpected keys ignored, e.g. %s", path, len(result.unexpected_keys), result.unexpected_keys[:5])
    return list(result.missing_keys), list(result.unexpected_keys)
