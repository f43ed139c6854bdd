"""Write an open_clip model folder, check it reproduces the model, then put it in place.

The folder is what ``open_clip.create_model_and_transforms("local-dir:DIR")`` and
``open_clip.get_tokenizer("local-dir:DIR")`` read (open_clip 3.3, ``factory.py``):

* ``open_clip_config.json`` — ``{"model_cfg": ..., "preprocess_cfg": ...}``;
* ``open_clip_model.safetensors`` — the weights (first in open_clip's search order);
* ``config.json`` — the HF text tower's architecture (``AutoConfig.from_pretrained(hf_model_name)``);
* the tokenizer files (``AutoTokenizer.from_pretrained(<folder>)``);
* ``README.md`` — the model card.

It is the layout an ``hf-hub:`` repository needs too. Everything is written into a staging
folder next to `out`, loaded back through open_clip and compared with the medalign model
(`verify`); only then does it replace `out`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from medalign.export.open_clip_model import OpenClipParts
from medalign.export.towers import ExportError

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
VERIFY_ATOL = 1e-5  # fp32 max abs difference of normalised embeddings allowed at export time
VERIFY_TEXTS = (
    "No acute cardiopulmonary process.",
    "Mild pulmonary edema with small bilateral pleural effusions; heart size is enlarged.",
    "",
)


MARKER_FILE = ".medalign-export.json"  # the files export wrote: the only ones --force may replace


def written_files(folder: Path) -> list[str]:
    """Every file under `folder`, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def check_out(out: Path, force: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse an `out` that `--force` could not replace without deleting someone else's files.

    `out` may be new, empty, or (with `force`) a folder a previous export wrote: it holds
    ``MARKER_FILE`` and no file that marker does not list. The working directory, its parents
    and the home folder are refused always (replacing them is never what was meant).

    Raises:
        FileExistsError: `out` is a file, or a non-empty folder without `force`.
        ValueError: `out` is the working directory, a parent of it or the home folder; with
            `force`, it holds files export did not write; or `force` would delete one of `inputs`.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a folder for the exported model")
    root = out.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if root == cwd or root in cwd.parents or root == home or root in home.parents:
        what = "the working directory" if root == cwd else "the home folder" if root == home else "a parent of the working directory or home folder"
        raise ValueError(f"--out {out} is {what} ({root}); export writes a new folder: give one, e.g. --out {out}/exported")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if entries and not force:
        raise FileExistsError(
            f"--out {out} is not empty ({len(entries)} entries, e.g. {entries[:3]}); choose an empty or new folder, "
            "or pass --force to replace a folder a previous `medalign export` wrote"
        )
    if not entries:
        return
    for path in inputs:
        if root == Path(path).resolve() or root in Path(path).resolve().parents:
            raise ValueError(f"--force would delete {path}, which lies inside --out {out}; export to another folder")
    foreign = sorted(set(written_files(out)) - set(_listed(out)) - {MARKER_FILE})
    if foreign or not (out / MARKER_FILE).is_file():
        shown = foreign[:3] if foreign else entries[:3]
        raise ValueError(
            f"--force replaces only a folder `medalign export` wrote, but --out {out} holds files it did not write "
            f"({len(foreign) or len(entries)}, e.g. {shown}); move them away or export to a new folder"
        )


def _listed(folder: Path) -> list[str]:
    """The files `folder`'s marker says export wrote (none for a missing or unreadable marker)."""
    try:
        listed = json.loads((folder / MARKER_FILE).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [str(f) for f in listed] if isinstance(listed, list) else []


def mark_written(folder: Path) -> None:
    """Record in `folder` every file in it, so a later ``--force`` knows they are export's to replace."""
    (folder / MARKER_FILE).write_text(json.dumps({"producer": "medalign export", "files": written_files(folder)}, indent=2) + "\n")


def preprocess_config(image_size: int, mean: Sequence[float], std: Sequence[float]) -> dict[str, Any]:
    """open_clip's ``preprocess_cfg`` of medalign's evaluation transform (`EvalPreprocess`, the one definition)."""
    from medalign.data.transforms import EvalPreprocess

    return EvalPreprocess(int(image_size), tuple(mean), tuple(std)).open_clip_cfg()


def write_files(folder: Path, parts: OpenClipParts, preprocess_cfg: dict[str, Any]) -> None:
    """Write config, weights, text-tower config and tokenizer files into `folder` (created)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    config = {"model_cfg": parts.model_cfg, "preprocess_cfg": preprocess_cfg}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    tensors = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous().clone()
               for k, v in parts.state_dict.items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "producer": "medalign export"})
    os.chmod(folder / WEIGHTS_FILE, (folder / CONFIG_FILE).stat().st_mode)  # safetensors writes 0600: share like the rest
    if parts.hf_config is not None:
        parts.hf_config.save_pretrained(folder)
    if parts.tokenizer is not None:
        parts.tokenizer.save_pretrained(str(folder))
    stray = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pth", ".safetensors") and p.name != WEIGHTS_FILE)
    if stray:  # open_clip would still pick ours first, but a second weights file misleads readers
        raise ExportError(f"tokenizer/config writers left weights files {stray} in {folder}")


def verify(
    folder: Path,
    parts: OpenClipParts,
    encode_image: Callable[[torch.Tensor], torch.Tensor],
    encode_text: Callable[[list[str]], torch.Tensor],
    logit_scale: float,
    atol: float = VERIFY_ATOL,
    transform: Callable[[torch.Tensor], tuple[torch.Tensor, Any]] | None = None,
) -> dict[str, float]:
    """Load `folder` through open_clip and compare it with the medalign model on fixed inputs.

    Args:
        folder: the written folder (an HF text tower's config is read from it, whatever
            ``hf_model_name`` says, so a hub-bound folder is checked too).
        parts: what was written.
        encode_image: medalign's preprocessed images (B, 3, S, S) → normalised embeddings (B, D).
        encode_text: medalign's texts → normalised embeddings (B, D), with medalign's tokenizer.
        logit_scale: medalign's exp(logit_scale).
        atol: largest max-abs difference accepted.
        transform: medalign's evaluation transform ((1, H, W) in [0, 1] → ((3, S, S), heatmap)): then
            open_clip's ``preprocess`` of a non-square 8-bit picture must give the same tensor.

    Returns:
        ``image``, ``text`` (max abs differences), ``preprocess`` (with `transform`: max abs
        difference of the two preprocessed pictures), ``logit_scale`` (open_clip's exp value) and,
        when the weights have one (SigLIP), ``logit_bias`` (open_clip's value, equal to the written one).

    Raises:
        ExportError: open_clip's model differs by more than `atol`.
    """
    import open_clip

    overrides = {}
    text_cfg = parts.model_cfg.get("text_cfg", {})
    if "hf_model_name" in text_cfg:
        overrides["text_cfg"] = {**text_cfg, "hf_model_name": str(folder)}
    clip, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}", **overrides)
    tokenize = open_clip.get_tokenizer(f"local-dir:{folder}")
    clip.eval()
    size = clip.visual.preprocess_cfg["size"]
    size = size[0] if isinstance(size, (tuple, list)) else size
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))  # (2, 3, S, S)
    texts = list(VERIFY_TEXTS)
    with torch.no_grad():
        theirs_image = F.normalize(clip.encode_image(images), dim=-1)
        theirs_text = F.normalize(clip.encode_text(tokenize(texts)), dim=-1)
        diffs = {
            "image": float((theirs_image - encode_image(images)).abs().max()),
            "text": float((theirs_text - encode_text(texts)).abs().max()),
            "logit_scale": float(clip.logit_scale.exp()),
        }
    if transform is not None:
        diffs["preprocess"] = _preprocess_difference(preprocess, transform, size)
        if diffs["preprocess"] > 0:
            raise ExportError(f"round trip: open_clip's preprocess of {folder} differs from medalign's evaluation transform "
                              f"on an 8-bit picture (max abs difference {diffs['preprocess']:.2e}); nothing was exported — "
                              "please report this with your open_clip and torchvision versions")
    ours_bias, theirs_bias = parts.state_dict.get("logit_bias"), getattr(clip, "logit_bias", None)
    if (theirs_bias is None) != (ours_bias is None) or (ours_bias is not None and not torch.equal(theirs_bias.detach(), ours_bias.float())):
        raise ExportError(f"round trip: open_clip's logit_bias from {folder} is {theirs_bias}, the checkpoint's {ours_bias}; "
                          "nothing was exported — please report this")
    if theirs_bias is not None:
        diffs["logit_bias"] = float(theirs_bias)
    if not diffs["image"] <= atol or not diffs["text"] <= atol or abs(diffs["logit_scale"] - logit_scale) > 1e-6 * logit_scale:
        raise ExportError(
            f"round trip: open_clip's model from {folder} differs from the checkpoint (max abs difference image "
            f"{diffs['image']:.2e}, text {diffs['text']:.2e}, allowed {atol:g}; logit scale {diffs['logit_scale']:.6g} vs "
            f"{logit_scale:.6g}); nothing was exported — please report this with the checkpoint's model config"
        )
    return diffs


def _preprocess_difference(preprocess: Callable, transform: Callable, size: int) -> float:
    """Max abs difference of open_clip's preprocess and medalign's transform on a non-square 8-bit gray picture."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size * 3 // 2 + 3, size + 5), dtype=np.uint8)  # (H, W): larger than S, not square
    theirs = preprocess(Image.fromarray(pixels, mode="L"))  # (3, S, S)
    ours = transform(torch.from_numpy(pixels).float()[None] / 255.0)[0]
    if theirs.shape != ours.shape:
        return float("inf")
    return float((theirs - ours).abs().max())


def staged(out: Path) -> Path:
    """A new, unique staging folder next to `out` (same file system, so the final move is a rename)."""
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-tmp-", dir=out.parent))
    stage.rmdir()  # `write_files` creates it; the unique name stays ours
    return stage


def put_in_place(stage: Path, out: Path) -> None:
    """Replace `out` (already checked by `check_out`) with the staging folder by renames.

    An old `out` is first renamed aside, then the stage renamed to `out`, and only then the
    old folder (which `check_out` found to hold only export's own files) removed; a failure
    in between puts the old folder back.
    """
    mark_written(stage)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        if out.is_dir():
            out.rmdir()
        stage.rename(out)
        return
    old = stage.with_name(stage.name.replace(".export-tmp-", ".export-old-"))
    out.rename(old)
    try:
        stage.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old)
