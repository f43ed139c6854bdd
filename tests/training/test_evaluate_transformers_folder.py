"""`medalign test` evaluates a frozen transformers SigLIP / CLIP folder (MedSigLIP's layout) like an open_clip folder."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

from medalign.training.cli import cli_main  # noqa: E402
from tests.evaluation.test_hf_clip_encoder import _save  # noqa: E402
from tests.helpers import TINY  # noqa: E402


@pytest.mark.parametrize("kind", ["siglip", "clip"])
def test_medalign_test_on_a_transformers_folder(tmp_path, synthetic_dir, kind):
    from medalign.evaluation.encoders import load_pretrained_encoder
    from medalign.evaluation.results import rows

    folder = _save(tmp_path / kind, kind)
    results = cli_main(["test", "--config", TINY, "--config", "eval/open_clip.yaml", "--evaluation.weights", str(folder),
                        "--data.manifest", str(synthetic_dir / "manifest.csv"), "--trainer.logger", "false",
                        "--evaluation.cache_dir", str(tmp_path / "cache"), "--evaluation.progress", "false",
                        "--evaluation.output_dir", str(tmp_path / "eval")]).evaluation_results  # fmt: skip
    assert results["encoder"]["settings"]["kind"] == "transformers"
    assert results["encoder"]["settings"]["model_type"] == kind
    assert results["encoder"]["fingerprint"] == load_pretrained_encoder(folder).fingerprint  # the folder, not the config's model
    table = rows(results)
    assert len(table) > 5 and {r["task"] for r in table} >= {"zero_shot", "retrieval"}
    assert all(r["n"] > 0 for r in table)
