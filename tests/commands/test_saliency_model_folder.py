"""`medalign saliency` given a model folder (open_clip or transformers) says it needs a medalign checkpoint."""

from __future__ import annotations

import pytest

from medalign.commands import saliency


def test_a_model_folder_is_refused_with_what_to_use(tmp_path):
    folder = tmp_path / "medsiglip-448"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "siglip"}')
    with pytest.raises(SystemExit, match=r"--ckpt .*medsiglip-448 is a model folder; saliency needs a medalign checkpoint"):
        saliency.run(["--ckpt", str(folder), "--manifest", str(tmp_path / "manifest.csv")])
