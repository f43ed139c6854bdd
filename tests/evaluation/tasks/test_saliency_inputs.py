"""`medalign saliency` applies training's heatmap rule: the image's size, finite, not all zero — naming file and row."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medalign.evaluation.tasks.saliency import saliency_agreement


class _Encoder:
    """Just enough of a checkpoint encoder to reach the heatmap check."""

    model = type("Model", (), {"image_projection": None})()

    def to(self, device):
        return self

    def transform(self, image, heatmap):
        return image.expand(3, -1, -1), heatmap


@pytest.mark.parametrize("heatmap, match", [
    (np.ones((32, 40), np.float32), r"has shape \(32, 40\) but its image is \(64, 64\)"),
    (np.full((64, 64), np.nan, np.float32), "contains NaN or Inf"),
    (np.zeros((64, 64), np.float32), "is all zeros"),
])  # fmt: skip
def test_bad_heatmaps_are_refused_naming_manifest_row_and_file(tmp_path, heatmap, match):
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / "b.png")
    np.save(tmp_path / "good.npy", np.ones((64, 64), np.float32))
    np.save(tmp_path / "bad.npy", heatmap)
    (tmp_path / "m.csv").write_text("id,image,text,split,heatmap\na,a.png,x,test,good.npy\nb,b.png,y,test,bad.npy\n")
    with pytest.raises(ValueError, match=rf"m.csv row 1: heatmap .*bad.npy {match}"):
        saliency_agreement(_Encoder(), tmp_path / "m.csv", "test", baselines=False, progress=False, device="cpu")
