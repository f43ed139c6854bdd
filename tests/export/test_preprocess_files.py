"""A user of the exported folder gets medalign's embeddings from image files with open_clip alone."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

open_clip = pytest.importorskip("open_clip")

from medalign.data.transforms import decode_image  # noqa: E402
from medalign.evaluation.encoders import load_checkpoint_encoder  # noqa: E402
from medalign.export import export_checkpoint  # noqa: E402
from tests.helpers import fit_tiny  # noqa: E402

ATOL = 1e-5  # fp32 forward of the same input tensor (docs/export.md)


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _picture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 110 + 90 * np.sin(7 * x) * np.cos(5 * y) + rng.normal(0, 15, (height, width))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_open_clip_preprocess_on_files_gives_medaligns_embeddings(tmp_path, synthetic_dir):
    fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "3")
    ckpt, out = tmp_path / "ckpt" / "last.ckpt", tmp_path / "exported"
    result = export_checkpoint(ckpt, out)
    assert result["differences"]["preprocess"] == 0.0  # the export-time check on a non-square 8-bit picture
    files = tmp_path / "files"
    files.mkdir()
    Image.fromarray(_picture(256, 300, 0)).save(files / "wide.png")  # non-square, larger than the model (64 px)
    Image.fromarray(_picture(1272, 1060, 1)).save(files / "large.png")
    Image.fromarray(_picture(300, 256, 2)).save(files / "tall.jpg", quality=90)
    Image.fromarray(_picture(240, 320, 3)).convert("RGB").save(files / "rgb.jpg", quality=90)  # gray stored as RGB
    Image.fromarray(_picture(48, 60, 4)).convert("RGB").save(files / "small_rgb.png")
    Image.fromarray(_picture(64, 64, 5)).save(files / "synthetic_size.png")
    paths = sorted(files.iterdir())

    clip, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")  # as a user loads it
    clip.eval()
    encoder = load_checkpoint_encoder(ckpt)  # what `medalign test` embeds: full decode + the eval transform
    with torch.no_grad():
        theirs = F.normalize(clip.encode_image(torch.stack([preprocess(Image.open(p)) for p in paths])), dim=-1)
        ours = encoder.encode_images(torch.stack([encoder.transform(decode_image(p)[0])[0] for p in paths]))
    per_file = (theirs - ours).abs().amax(1)
    assert float(per_file.max()) <= ATOL, dict(zip([p.name for p in paths], per_file.tolist()))

    # 16-bit PNG: medalign rounds it to 8 bits (with a warning); open_clip gets that picture from open_clip_image
    from medalign.data.transforms import open_clip_image

    deep = files / "deep.png"
    Image.fromarray((_picture(200, 170, 6).astype(np.uint16) * 257)).save(deep)
    with torch.no_grad():
        want = encoder.encode_images(encoder.transform(decode_image(deep)[0])[0][None])
        got = F.normalize(clip.encode_image(preprocess(open_clip_image(deep))[None]), dim=-1)
    assert float((got - want).abs().max()) <= ATOL
