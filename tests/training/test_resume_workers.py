"""Resume with loader workers continues the same data order (main and expert streams, gated loads).

On resume Lightning creates the train loader's iterator before it sets the samplers' epoch, and
workers prefetch at once: the restored loader state has to carry the epoch itself. Found by a
benchmark cell resumed after SIGTERM in epoch 5 that replayed epoch 0's order and failed with "drew
an expert step ... but the batch has no expert sub-batch".
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers import fit_tiny

CONFIG = str(Path(__file__).parents[1] / "conf" / "tiny_eclip.yaml")
WORKERS = ("--trainer.limit_val_batches", "1", "--trainer.max_epochs", "6", "--data.num_workers", "2", "--data.expert_num_workers", "1")
STEPS = 30  # resumed at 21 or 15: every later epoch (3, 4, 5) is compared with the uninterrupted run
Record = dict[int, tuple[list[int], bool, list[int] | None]]


def _fit_recording(monkeypatch: pytest.MonkeyPatch, folder: Path, synthetic_dir: Path, *extra: str) -> Record:
    """Per optimizer step: the main rows, the curriculum's draw and the expert rows loaded (None: not loaded).

    Also under key -1: the run length the curriculum saw at each expert-gate call (the module's
    ``total_steps``, else Lightning's count), the prefetched ones before Lightning counted the run included.
    """
    from medalign.training.datamodule import MedAlignDataModule
    from medalign.training.eclip import ECLIPModule

    seen: Record = {}
    totals: list[int | None] = []
    original = ECLIPModule.training_step
    gate = MedAlignDataModule._expert_batch_used

    def gate_recording(self, epoch, batch):
        used = gate(self, epoch, batch)
        module = self.trainer.lightning_module
        totals.append(module.total_steps if module.total_steps is not None else self.trainer.estimated_stepping_batches)
        return used

    def recording(self, batch, batch_idx):
        expert = batch["expert"]
        seen[self.global_step] = (batch["main"]["index"].tolist(), self.expert_used_at(self.global_step),
                                  None if expert is None else expert["index"].tolist())
        return original(self, batch, batch_idx)

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with monkeypatch.context() as patch:
        patch.setattr(ECLIPModule, "training_step", recording)
        patch.setattr(MedAlignDataModule, "_expert_batch_used", gate_recording)
        fit_tiny(folder, synthetic_dir, *WORKERS, *extra, config=CONFIG)
    seen[-1] = totals
    return seen


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synthetic_dir) -> tuple[Path, Record]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        return folder, _fit_recording(monkeypatch, folder, synthetic_dir)


@pytest.mark.slow
@pytest.mark.parametrize("step", [21, 15], ids=["mid_epoch_4", "end_of_epoch_2"])
def test_resume_with_workers_sees_the_rows_and_draws_of_the_uninterrupted_run(step, uninterrupted, tmp_path, synthetic_dir, monkeypatch):
    folder, full = uninterrupted
    full = dict(full)
    full.pop(-1)  # a fresh run gates batch 0 before its loader exists: it loads it (step 0 needs no run length)
    assert sorted(full) == list(range(STEPS))  # 160 train rows / 32 = 5 steps per epoch, 6 epochs
    assert all(used == (rows is not None) for _, used, rows in full.values())  # loaded exactly when drawn
    assert any(used for _, used, _ in list(full.values())[step:])  # the resumed part uses expert pairs
    resumed = _fit_recording(monkeypatch, tmp_path, synthetic_dir, "--ckpt_path", str(folder / "ckpt" / f"step{step}.ckpt"))
    totals = resumed.pop(-1)
    assert len(totals) >= STEPS - step and set(totals) == {STEPS}, totals  # prefetched draws knew the run's length
    assert sorted(resumed) == list(range(step, STEPS))
    for s in range(step, STEPS):
        assert resumed[s] == full[s], f"step {s}: resumed (main rows, draw, expert rows) differ from the uninterrupted run"
