"""Load an exported folder wherever it now lies (after moving, copying or downloading it).

open_clip 3.3 builds an HF text tower from ``text_cfg.hf_model_name`` with
``AutoConfig.from_pretrained``, resolved against the working directory: it does not rewrite the
name for ``local-dir:``. The folder written by `medalign export` names its own path there (or the
hub id with ``--hub-id``), which is stale once the folder moves. `load_open_clip` points the text
tower at the folder itself, so the folder is self-contained: the config, weights, ``config.json``
and tokenizer files are all read from `folder`. It is plain open_clip with one override::

    text_cfg = json.load(open(f"{folder}/open_clip_config.json"))["model_cfg"]["text_cfg"]
    open_clip.create_model_and_transforms(f"local-dir:{folder}", text_cfg={**text_cfg, "hf_model_name": folder})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONFIG_FILE = "open_clip_config.json"


def folder_overrides(folder: str | Path) -> dict[str, Any]:
    """``create_model`` keywords that read an HF text tower's ``config.json`` from `folder` ({} for open_clip's own text tower).

    Raises:
        FileNotFoundError: `folder` has no ``open_clip_config.json``, or an HF text tower without ``config.json``.
    """
    folder = Path(folder)
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: give a folder written by `medalign export`")
    text_cfg = json.loads(config.read_text())["model_cfg"].get("text_cfg", {})
    if "hf_model_name" not in text_cfg:
        return {}
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: open_clip_config.json names an HF text tower but the folder has no config.json")
    return {"text_cfg": {**text_cfg, "hf_model_name": str(folder.resolve()), "hf_model_pretrained": False}}


def load_open_clip(folder: str | Path) -> tuple[Any, Any, Any, Any]:
    """An exported folder as open_clip's (model, train preprocess, eval preprocess, tokenizer), in eval mode.

    Args:
        folder: a folder written by `medalign export`, at any path (the one it was written to or not).
    """
    import open_clip

    folder = Path(folder)
    model, train_preprocess, preprocess = open_clip.create_model_and_transforms(
        f"local-dir:{folder}", **folder_overrides(folder))
    return model.eval(), train_preprocess, preprocess, open_clip.get_tokenizer(f"local-dir:{folder}")
