"""`test --ckpt_path WEIGHTS` on a file without hyper-parameters: the config's --model is its architecture."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from medalign.data.tokenizer import load_tokenizer
from medalign.evaluation.embeddings import get_embeddings
from medalign.evaluation.encoders import MedAlignEncoder
from medalign.models import create_dual_encoder
from medalign.training.cli import cli_main
from tests.helpers import TINY


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _test(tmp_path, manifest, ckpt, *extra):
    return cli_main(["test", "--config", TINY, "--data.manifest", str(manifest), "--trainer.logger", "false",
                     "--evaluation.tasks", "[{type: retrieval}]", "--evaluation.cache_dir", str(tmp_path / "cache"),
                     "--evaluation.output_dir", str(tmp_path / "eval"), "--evaluation.progress", "false",
                     "--ckpt_path", str(ckpt), *extra])


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_plain_weights_file_is_evaluated_on_the_architecture_the_command_line_names(tmp_path, synthetic_dir, suffix):
    manifest = synthetic_dir / "manifest.csv"
    tokenizer = load_tokenizer(synthetic_dir / "tokenizer")
    torch.manual_seed(3)
    model = create_dual_encoder("tiny", vocab_size=len(tokenizer), embed_dim=48)  # not the preset's 512
    state = {f"module.{k}": v.contiguous() for k, v in model.state_dict().items()}  # as a DDP wrapper saves it
    path = tmp_path / f"weights{suffix}"
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)

    run = _test(tmp_path, manifest, path, "--model.init_args.embed_dim", "48").evaluation_results
    got = run["tasks"][0]["metrics"]
    # independent reference: the in-memory model, encoded directly (no checkpoint, no CLI)
    reference = MedAlignEncoder(model, tokenizer, max_length=32, image_size=64)
    emb = get_embeddings(reference, manifest, "test", cache_dir=tmp_path / "ref", progress=False)
    sims = emb.image @ emb.text.T
    truth = np.diag(sims)
    rank = 1 + (sims >= truth[:, None]).sum(1) - 1  # items other than the truth scoring ≥ it, + 1
    assert got["i2t_median_rank"] == pytest.approx(float(np.median(rank)))

    with pytest.raises(Exception, match=r"size mismatch|shape"):  # the default 512-d head does not fit
        _test(tmp_path, manifest, path)
