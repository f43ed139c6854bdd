"""An exported folder loads after it is moved, and loading it never claims random weights."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from medalign.export import load_open_clip, open_clip_parts  # noqa: E402
from medalign.export.folder import preprocess_config, write_files  # noqa: E402
from medalign.models import ModelSpec, create_dual_encoder  # noqa: E402

TEXTS = ["No acute cardiopulmonary process.", "Small left pleural effusion."]


@pytest.fixture()
def exported(tmp_path, tokenizer):
    """A tiny model (perturbed weights) exported into tmp_path/written; returns (model, folder)."""
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer))
    model = create_dual_encoder(spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    folder = tmp_path / "written" / "model"
    parts = open_clip_parts(model.eval(), spec, tokenizer, 64, 32, str(folder.resolve()))
    write_files(folder, parts, preprocess_config(64, (0.5,) * 3, (0.25,) * 3))
    return model.eval(), folder


def _embed(model, tokenize):
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return F.normalize(model.encode_image(images), dim=-1), F.normalize(model.encode_text(tokenize(TEXTS)), dim=-1)


def test_moved_folder_loads_and_embeds_as_before(exported, tmp_path):
    _, folder = exported
    clip, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")  # in place, as written
    before = _embed(clip.eval(), open_clip.get_tokenizer(f"local-dir:{folder}"))
    moved = tmp_path / "elsewhere" / "shared-model"
    moved.parent.mkdir()
    shutil.move(str(folder), str(moved))
    shutil.rmtree(tmp_path / "written")
    model, _, preprocess, tokenize = load_open_clip(moved)
    after = _embed(model, tokenize)
    assert preprocess is not None and not model.training
    for b, a in zip(before, after):
        assert torch.equal(b, a)
    # the same through plain open_clip with the override the module docstring documents
    from medalign.export.load import folder_overrides

    plain, _, _ = open_clip.create_model_and_transforms(f"local-dir:{moved}", **folder_overrides(moved))
    assert torch.equal(_embed(plain.eval(), tokenize)[1], after[1])


def test_loading_an_export_for_evaluation_does_not_claim_random_weights(exported, caplog):
    from medalign.evaluation.encoders import OpenClipEncoder

    model, folder = exported
    with caplog.at_level(logging.INFO):
        encoder = OpenClipEncoder.from_pretrained(folder)
    assert not [r for r in caplog.records if "randomly" in r.getMessage()], [r.getMessage() for r in caplog.records]
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (encoder.encode_images(images) - model.encode_image(images)).abs().max() <= 1e-5  # the weights are loaded
