"""eCLIP under plain DDP on 2 gloo processes: an expert step equals one process on the same N + M pairs,
and steps where the heatmap processor idles need no ``find_unused_parameters``."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from medalign.training.eclip import ECLIPModule

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
PAIRS = 8  # N = M = 8 on one process, 4 + 4 per rank on two


class SGDECLIP(ECLIPModule):
    """Plain SGD so one step's weight change is exactly −lr × gradient; records each rank's loss."""

    def __init__(self, loss_dir: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.loss_dir = loss_dir

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        if self.loss_dir:
            torch.save(loss.detach(), f"{self.loss_dir}/loss_{self.global_step}_{self.global_rank}.pt")
        return loss


def _pairs() -> list[dict]:
    """Item i: main pair i and expert pair 100 + i (with a heatmap); Lightning shards items across ranks."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2 * PAIRS, 3, 64, 64, generator=g)
    ids = torch.randint(5, 100, (2 * PAIRS, 12), generator=g)
    heat = torch.rand(PAIRS, 1, 64, 64, generator=g)

    def pair(i: int, index: int) -> dict:
        return {"image": images[i], "input_ids": ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "index": index}

    return [{"main": pair(i, i), "expert": {**pair(PAIRS + i, 100 + i), "heatmap": heat[i]}} for i in range(PAIRS)]


def _module(loss_dir: str = "", **kwargs) -> SGDECLIP:
    torch.manual_seed(0)
    return SGDECLIP(loss_dir=loss_dir, preset="tiny", vocab_size=100, text_config=NO_DROPOUT,
                    processor_kwargs={"patch_size": 16, "width": 32, "num_heads": 4}, **kwargs)


def _fit(module: SGDECLIP, devices: int, steps: int, strategy: str = "ddp_spawn") -> dict[str, torch.Tensor]:
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy=strategy if devices > 1 else "auto", max_steps=steps,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(_pairs(), batch_size=PAIRS // devices))
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
def test_expert_step_on_two_gloo_ranks_equals_one_process_on_the_same_pairs(tmp_path):
    """p = 1, mixup on (per-sample λ), priming on: same loss, same update (= same gradients) of every weight."""
    settings = dict(use_curriculum=False, mixup_alpha=0.3, priming_weight=0.1, priming_fraction=1.0)
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    initial = _module(**settings).state_dict()
    single = _fit(_module(str(tmp_path / "one"), **settings), devices=1, steps=1)
    ddp = _fit(_module(str(tmp_path / "two"), **settings), devices=2, steps=1)  # plain DDP: find_unused off
    loss_one = torch.load(tmp_path / "one" / "loss_0_0.pt")
    loss_two = (torch.load(tmp_path / "two" / "loss_0_0.pt") + torch.load(tmp_path / "two" / "loss_0_1.pt")) / 2
    torch.testing.assert_close(loss_two, loss_one, atol=1e-6, rtol=1e-5)  # DDP averages the ranks' local losses
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert any(k.startswith("processor.") for k in moved) and len(moved) > 20
    assert int(single["expert_pairs_seen"]) == int(ddp["expert_pairs_seen"]) == PAIRS
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-6, rtol=1e-4, msg=f"{key} differs between DDP and 1 process")


@pytest.mark.slow
def test_plain_ddp_runs_idle_and_expert_steps_and_an_idle_processor_does_not_move():
    """Plain DDP needs every parameter in every backward: 2 idle steps; then 2 idle + 2 expert steps."""
    never = dict(curriculum={"cold_start": 1.0, "warmup": 0.0, "cooldown": 0.0}, priming_weight=0.0)
    initial = _module(**never).state_dict()
    idle = _fit(_module(**never), devices=2, steps=2, strategy="ddp_spawn")
    assert all(torch.equal(idle[k], initial[k]) for k in initial if k.startswith("processor."))
    assert not torch.equal(idle["model.logit_scale"], initial["model.logit_scale"])  # but the towers trained
    half = dict(curriculum={"cold_start": 0.5, "warmup": 0.0, "cooldown": 0.0, "floor": 1.0}, priming_weight=0.0)
    both = _fit(_module(**half), devices=2, steps=4, strategy="ddp_spawn")  # progress 0, .25 idle; .5, .75 experts
    assert int(both["expert_pairs_seen"]) == 2 * PAIRS
    assert any(not torch.equal(both[k], initial[k]) for k in initial if k.startswith("processor."))
