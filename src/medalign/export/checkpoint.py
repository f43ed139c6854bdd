"""`export_checkpoint`: a medalign checkpoint → an open_clip model folder with a model card.

The model, tokenizer and data settings come from the checkpoint through the one checkpoint →
encoder path (`medalign.evaluation.encoders.load_checkpoint_encoder`); the towers are mapped
by `medalign.export.open_clip_model`; the folder is staged, verified through open_clip and
moved into place by `medalign.export.folder`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from medalign.export.card import CardInfo, model_card, training_config
from medalign.export.folder import check_out, preprocess_config, put_in_place, staged, verify, write_files
from medalign.export.open_clip_model import OpenClipParts, open_clip_parts
from medalign.export.towers import ExportError
from medalign.models.checkpoint import load_checkpoint_file
from medalign.models.spec import ModelSpec

log = logging.getLogger(__name__)

SIGLIP_BIAS_KEY = "logit_bias"  # the training module's SigLIP bias (a top-level parameter, or an objective's)


def export_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    results: str | Path | None = None,
    force: bool = False,
    hub_id: str | None = None,
    tokenizer: Any | None = None,
) -> dict[str, Any]:
    """Export a trained checkpoint as a folder open_clip loads offline.

    Args:
        ckpt: a medalign Lightning checkpoint (``.ckpt`` written by ``fit``).
        out: the folder to write (must be new or empty unless `force`).
        results: a ``results.json`` of ``medalign test`` to put in the model card.
        force: replace a non-empty `out`.
        hub_id: ``org/name`` of the Hugging Face repository the folder will be uploaded to: the
            config then names the text tower by that id (needed for ``hf-hub:`` loading); without
            it the config names the folder's absolute path (``local-dir:`` loading in place).
        tokenizer: a loaded tokenizer overriding the checkpoint's ``data.tokenizer``.

    Returns:
        ``out``, ``files``, the round-trip ``differences`` and the model card's facts.

    Raises:
        FileNotFoundError: the checkpoint, results file or tokenizer is missing.
        FileExistsError: `out` is not empty and `force` is not set.
        ExportError: a tower open_clip cannot express, or a failed round trip.
    """
    from medalign.evaluation.encoders import load_checkpoint_encoder

    ckpt, out = Path(ckpt), Path(out)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {ckpt} does not exist")
    evaluation = _read_results(Path(results)) if results else None
    check_out(out, force, inputs=[ckpt] + ([Path(results)] if results else []))
    saved = load_checkpoint_file(ckpt, mmap=True)  # a damaged file: CheckpointError naming it
    hparams = dict(saved.get("hyper_parameters") or {}) if isinstance(saved, dict) else {}
    data = dict(saved.get("datamodule_hyper_parameters") or {}) if isinstance(saved, dict) else {}
    if not hparams:
        raise ValueError(f"{ckpt} has no hyper_parameters: export needs a medalign checkpoint written by `medalign fit`")

    encoder = load_checkpoint_encoder(ckpt, tokenizer)
    settings = encoder.settings
    spec = ModelSpec.from_hparams(hparams)
    source = hub_id or str(out.resolve())
    parts = open_clip_parts(encoder.model, spec, encoder.tokenizer, settings["image_size"], encoder.max_length, source)
    state = saved.get("state_dict", {})
    bias = add_logit_bias(parts, state)
    exported = {k for k in state if k.split(".")[-1] == SIGLIP_BIAS_KEY} if bias is not None else set()  # the bias goes in
    left_out = sorted({k.split(".")[0] for k in state if "." in k and not k.startswith("model.") and k not in exported})
    info = CardInfo(
        checkpoint=str(ckpt), towers=parts.towers, embed_dim=int(parts.model_cfg["embed_dim"]),
        temperature=1.0 / float(encoder.model.logit_scale.detach().exp()), image_size=settings["image_size"],
        mean=settings["mean"], std=settings["std"],
        context_length=int(parts.model_cfg.get("text_cfg", {}).get("context_length", encoder.max_length)),
        method=str(hparams.get("method", "clip")), left_out=left_out,
        global_step=saved.get("global_step"), epoch=saved.get("epoch"),
        manifest=data.get("manifest"), config_yaml=training_config(ckpt, hparams, data),
        results=evaluation, hub_id=hub_id, logit_bias=bias,
    )
    del saved, state

    stage = staged(out)
    try:
        write_files(stage, parts, preprocess_config(settings["image_size"], settings["mean"], settings["std"]))
        with torch.no_grad():
            info.differences = verify(stage, parts, encoder.encode_images, encoder.encode_texts,
                                      float(encoder.model.logit_scale.detach().exp()), transform=encoder.transform)
        (stage / "README.md").write_text(model_card(info, out.name))
        put_in_place(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    files = sorted(p.name for p in out.iterdir())
    log.info("exported %s to %s (%s)", ckpt, out, ", ".join(files))
    return {"out": str(out), "files": files, "differences": info.differences, "card": info}


def add_logit_bias(parts: OpenClipParts, state: dict[str, torch.Tensor]) -> float | None:
    """Put a SigLIP checkpoint's learned bias into `parts` as open_clip's ``logit_bias``; its value, or None.

    The bias belongs to the training module (the loss), not to the dual encoder, so the towers'
    mapping never sees it; open_clip builds ``logit_bias`` from ``model_cfg["init_logit_bias"]``
    and loads the learned value from the weights. For a model fine-tuned from an open_clip
    SigLIP preset the trained bias replaces the preset's own (untrained under medalign) one.
    """
    keys = [k for k in state if k == SIGLIP_BIAS_KEY or (k.endswith("." + SIGLIP_BIAS_KEY) and not k.startswith("model."))]
    if not keys:
        return None
    if len(keys) > 1:
        raise ExportError(f"checkpoint: several SigLIP biases {keys}; cannot tell which one the loss used")
    bias = state[keys[0]].detach().float().reshape(())
    parts.model_cfg["init_logit_bias"] = float(bias)
    parts.state_dict["logit_bias"] = bias.clone()
    return float(bias)


def _read_results(path: Path) -> dict[str, Any]:
    """A ``medalign test`` results.json (needs ``encoder`` and ``tasks``)."""
    if not path.is_file():
        raise FileNotFoundError(f"--results {path} does not exist (give the results.json a `medalign test` run wrote)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"--results {path} is not valid JSON: {err}") from err
    if not isinstance(results, dict) or not {"encoder", "tasks"} <= set(results):
        raise ValueError(f"--results {path} is not a `medalign test` results.json (needs the keys 'encoder' and 'tasks')")
    return results
