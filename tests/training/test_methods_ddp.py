"""SigLIP and the gap-closing terms under DDP: 2 gloo processes on half-batches update the model
exactly like 1 process on the whole batch (the pattern of test_ddp.py)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from medalign.training.module import ContrastiveModule
from tests.training.test_ddp import NO_DROPOUT, _pairs

OPTIONS = {
    "siglip": {"loss": "siglip", "init_temperature": 0.1},
    "gap_closing": {"align_weight": 1.0, "centroid_uniformity_weight": 1.0},
}


class SGDModule(ContrastiveModule):
    """Plain SGD so one step's weight change is exactly -lr × gradient."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _train_one_step(devices: int, options: dict) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    module = SGDModule(preset="tiny", vocab_size=100, text_config=NO_DROPOUT, **options)
    trainer = L.Trainer(
        accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto", max_steps=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    pairs = _pairs()
    trainer.fit(module, DataLoader(pairs, batch_size=len(pairs) // devices))
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIONS))
def test_two_gloo_ranks_match_one_process_on_the_global_batch(name):
    torch.manual_seed(0)
    initial = SGDModule(preset="tiny", vocab_size=100, text_config=NO_DROPOUT, **OPTIONS[name]).state_dict()
    single = _train_one_step(1, OPTIONS[name])
    ddp = _train_one_step(2, OPTIONS[name])
    clip = _train_one_step(1, {})
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert len(moved) > 20  # the step really changed the weights
    assert any(not torch.allclose(single[k], clip[k]) for k in clip)  # and differently from plain CLIP
    if name == "siglip":
        assert not torch.equal(single["objectives.0.logit_bias"], initial["objectives.0.logit_bias"])
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-6, rtol=1e-4, msg=f"{key} differs between DDP and 1 process")
