"""DDP equivalence: 2 gloo processes on half-batches give the numbers of 1 process on the whole batch.

Covered: a CLIP step, SigLIP and the gap-closing terms, eCLIP's expert step (and plain DDP through
idle and expert steps), the geometry callback's validation numbers, and the per-step expert draw.
All two-rank runs share one spawned pair of processes (module fixture ``two_ranks``,
``tests/training/gloo_pair.py``): two fresh interpreters cost more than all the tiny steps
together. Each test still checks its own run against its own one-process reference.
"""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from medalign.curriculum import expert_decision
from medalign.training.eclip import ECLIPModule
from medalign.training.module import ContrastiveModule
from medalign.training.callbacks import select_subset
from tests.training.gloo_pair import run_on_two_gloo_ranks
from tests.training.test_callbacks import LABELLED_KEYS, SUBSET, _Pairs, _validate

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OPTIONS = {
    "clip": {},
    "siglip": {"loss": "siglip", "init_temperature": 0.1},
    "gap_closing": {"align_weight": 1.0, "centroid_uniformity_weight": 1.0},
}
PAIRS = 8  # eCLIP: N = M = 8 on one process, 4 + 4 per rank on two
ECLIP_EXPERT = dict(use_curriculum=False, mixup_alpha=0.3, priming_weight=0.1, priming_fraction=1.0)
ECLIP_NEVER = dict(curriculum={"cold_start": 1.0, "warmup": 0.0, "cooldown": 0.0}, priming_weight=0.0)
ECLIP_HALF = dict(curriculum={"cold_start": 0.5, "warmup": 0.0, "cooldown": 0.0, "floor": 1.0}, priming_weight=0.0)


def _trainer(devices: int, steps: int) -> L.Trainer:
    """1 process, or one of the 2 ranks the gloo pair launched (``strategy="ddp"`` launches nothing there)."""
    return L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", max_steps=steps,
                     logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------- CLIP, SigLIP, gap-closing


class SGDModule(ContrastiveModule):
    """Plain SGD so one step's weight change is exactly -lr × gradient."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _contrastive(options: dict) -> SGDModule:
    torch.manual_seed(0)
    return SGDModule(preset="tiny", vocab_size=100, text_config=NO_DROPOUT, **options)


def _pairs(n: int = 8) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, 64, 64, generator=g)
    ids = torch.randint(5, 100, (n, 12), generator=g)
    return [
        {"image": images[i], "input_ids": ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "index": i}
        for i in range(n)
    ]


def _train_one_step(devices: int, options: dict) -> dict[str, torch.Tensor]:
    module = _contrastive(options)
    pairs = _pairs()
    # Lightning shards the 8 pairs across ranks: each process gets a batch of 8 / devices.
    _trainer(devices, steps=1).fit(module, DataLoader(pairs, batch_size=len(pairs) // devices))
    return _state(module)


# ----------------------------------------------------------------------- eCLIP


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


def _eclip_pairs() -> list[dict]:
    """Item i: main pair i and expert pair 100 + i (with a heatmap); Lightning shards items across ranks."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2 * PAIRS, 3, 64, 64, generator=g)
    ids = torch.randint(5, 100, (2 * PAIRS, 12), generator=g)
    heat = torch.rand(PAIRS, 1, 64, 64, generator=g)

    def pair(i: int, index: int) -> dict:
        return {"image": images[i], "input_ids": ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "index": index}

    return [{"main": pair(i, i), "expert": {**pair(PAIRS + i, 100 + i), "heatmap": heat[i]}} for i in range(PAIRS)]


def _eclip(loss_dir: str = "", **kwargs) -> SGDECLIP:
    torch.manual_seed(0)
    return SGDECLIP(loss_dir=loss_dir, preset="tiny", vocab_size=100, text_config=NO_DROPOUT,
                    processor_kwargs={"patch_size": 16, "width": 32, "num_heads": 4}, **kwargs)


def _fit_eclip(devices: int, steps: int, settings: dict, loss_dir: str = "") -> dict[str, torch.Tensor]:
    module = _eclip(loss_dir, **settings)
    _trainer(devices, steps).fit(module, DataLoader(_eclip_pairs(), batch_size=PAIRS // devices))
    return _state(module)


# ----------------------------------------------------------------------- expert draw


def _expert_decisions() -> torch.Tensor:
    """Both ranks' decisions for 500 steps, drawn while their global RNGs differ on purpose."""
    rank = dist.get_rank()
    torch.manual_seed(rank)
    torch.rand(rank + 1)
    mine = torch.tensor([expert_decision(7, step, 0.3) for step in range(500)], dtype=torch.int64)
    gathered = [torch.zeros_like(mine) for _ in range(2)]
    dist.all_gather(gathered, mine)
    return torch.stack(gathered)


# ----------------------------------------------------------------------- the pair


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> dict:
    """Every two-rank run of this file, in one spawned gloo pair; name → [rank 0's result, rank 1's]."""
    root = tmp_path_factory.mktemp("two_ranks")
    (root / "eclip_losses").mkdir()
    jobs = {name: partial(_train_one_step, 2, options) for name, options in OPTIONS.items()}
    jobs["eclip_expert"] = partial(_fit_eclip, 2, 1, ECLIP_EXPERT, str(root / "eclip_losses"))  # plain DDP
    jobs["eclip_idle"] = partial(_fit_eclip, 2, 2, ECLIP_NEVER)
    jobs["eclip_both"] = partial(_fit_eclip, 2, 4, ECLIP_HALF)  # progress 0, .25 idle; .5, .75 experts
    jobs["geometry"] = partial(_validate, 2)
    jobs["decisions"] = _expert_decisions
    results = run_on_two_gloo_ranks(jobs, root / "results")
    results["eclip_losses"] = [torch.load(root / "eclip_losses" / f"loss_0_{r}.pt") for r in range(2)]
    return results


@pytest.fixture(scope="module")
def one_process() -> dict[str, dict[str, torch.Tensor]]:
    """The initial weights and the one-process step of CLIP, SigLIP and the gap-closing terms."""
    return {name: {"initial": _state(_contrastive(options)), "single": _train_one_step(1, options)}
            for name, options in OPTIONS.items()}


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_on_the_global_batch(two_ranks, one_process):
    single, initial, ddp = one_process["clip"]["single"], one_process["clip"]["initial"], two_ranks["clip"][0]
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert len(moved) > 20  # the step really changed the weights
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-6, rtol=1e-4, msg=f"{key} differs between DDP and 1 process")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["siglip", "gap_closing"])
def test_methods_on_two_gloo_ranks_match_one_process_on_the_global_batch(two_ranks, one_process, name):
    """SigLIP and the gap-closing terms under DDP (the pattern of the CLIP test above)."""
    single, initial, ddp = one_process[name]["single"], one_process[name]["initial"], two_ranks[name][0]
    clip = one_process["clip"]["single"]
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert len(moved) > 20  # the step really changed the weights
    assert any(not torch.allclose(single[k], clip[k]) for k in clip)  # and differently from plain CLIP
    if name == "siglip":
        assert not torch.equal(single["objectives.0.logit_bias"], initial["objectives.0.logit_bias"])
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-6, rtol=1e-4, msg=f"{key} differs between DDP and 1 process")


@pytest.mark.slow
def test_eclip_expert_step_on_two_gloo_ranks_equals_one_process_on_the_same_pairs(two_ranks, tmp_path):
    """p = 1, mixup on (per-sample λ), priming on: same loss, same update (= same gradients) of every weight."""
    initial = _state(_eclip(**ECLIP_EXPERT))
    single = _fit_eclip(1, 1, ECLIP_EXPERT, str(tmp_path))
    ddp = two_ranks["eclip_expert"][0]
    loss_one = torch.load(tmp_path / "loss_0_0.pt")
    loss_two = (two_ranks["eclip_losses"][0] + two_ranks["eclip_losses"][1]) / 2
    torch.testing.assert_close(loss_two, loss_one, atol=1e-6, rtol=1e-5)  # DDP averages the ranks' local losses
    moved = [k for k in single if not torch.equal(single[k], initial[k])]
    assert any(k.startswith("processor.") for k in moved) and len(moved) > 20
    assert int(single["expert_pairs_seen"]) == int(ddp["expert_pairs_seen"]) == PAIRS
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=2e-6, rtol=1e-4, msg=f"{key} differs between DDP and 1 process")


@pytest.mark.slow
def test_plain_eclip_ddp_runs_idle_and_expert_steps_and_an_idle_processor_does_not_move(two_ranks):
    """Plain DDP needs every parameter in every backward: 2 idle steps; then 2 idle + 2 expert steps."""
    initial = _state(_eclip(**ECLIP_NEVER))
    idle = two_ranks["eclip_idle"][0]
    assert all(torch.equal(idle[k], initial[k]) for k in initial if k.startswith("processor."))
    assert not torch.equal(idle["model.logit_scale"], initial["model.logit_scale"])  # but the towers trained
    both = two_ranks["eclip_both"][0]
    assert int(both["expert_pairs_seen"]) == 2 * PAIRS
    assert any(not torch.equal(both[k], initial[k]) for k in initial if k.startswith("processor."))


@pytest.mark.slow
def test_geometry_callback_on_two_gloo_ranks_gives_the_numbers_of_one_process(two_ranks):
    rows = _Pairs().rows
    padded_row = rows[0]  # DistributedSampler pads 19 rows to 20 by repeating the first
    assert padded_row in select_subset(rows, SUBSET, seed=0)  # so a duplicate reaches the dedupe
    single = _validate(1)
    ddp = two_ranks["geometry"][0]  # ranks keep uneven numbers of subset rows, one of them padded
    assert set(single) == {f"geometry/{k}" for k in LABELLED_KEYS}
    assert single["geometry/n_pairs"] == SUBSET and ddp["geometry/n_pairs"] == SUBSET
    for key in single:
        assert ddp[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
def test_two_gloo_ranks_draw_identical_expert_decisions(two_ranks):
    both = two_ranks["decisions"][0]
    assert torch.equal(both[0], both[1])
    assert 0.2 < both[0].float().mean() < 0.4  # and they are real Bernoulli(0.3) draws
