"""DDP equivalence: 2 gloo processes on half-batches update the model exactly like 1 process on the whole batch."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from medalign.training.module import ContrastiveModule

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


class SGDModule(ContrastiveModule):
    """Plain SGD so one step's weight change is exactly -lr × gradient."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _pairs(n: int = 8) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, 64, 64, generator=g)
    ids = torch.randint(5, 100, (n, 12), generator=g)
    return [
        {"image": images[i], "input_ids": ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "index": i}
        for i in range(n)
    ]


def _train_one_step(devices: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    module = SGDModule(preset="tiny", vocab_size=100, text_config=NO_DROPOUT)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    pairs = _pairs()
    # Lightning shards the 8 pairs across ranks: each process gets a batch of 8 / devices.
    trainer.fit(module, DataLoader(pairs, batch_size=len(pairs) // devices))
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_on_the_global_batch():
    torch.manual_seed(0)
    initial = SGDModule(preset="tiny", vocab_size=100, text_config=NO_DROPOUT).state_dict()
    single = _train_one_step(devices=1)
    ddp = _train_one_step(devices=2)
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert len(moved) > 20  # the step really changed the weights
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-6, rtol=1e-4, msg=f"{key} differs between DDP and 1 process")
