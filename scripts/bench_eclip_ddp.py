"""Step time of eCLIP under plain DDP against ``find_unused_parameters=True`` (2 gloo processes, CPU).

eCLIP keeps its heatmap processor in the graph at zero weight on steps where it idles, so plain
DDP works; ``find_unused_parameters=True`` instead walks the autograd graph after every forward.
Runs alternate (plain, find_unused, plain, ...) so drifting machine load hits both alike; each run
fits `--steps` steps of the tiny preset on random pairs with the paper's curriculum compressed so
that experts and idle steps both occur, and reports the median step time of rank 0 after warm-up.

    python scripts/bench_eclip_ddp.py                  # 3 runs per variant, 30 steps each
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader

from medalign.training.eclip import ECLIPModule


class StepTimer(L.Callback):
    """Wall time of every training batch on rank 0 (forward, backward with its all-reduce, optimizer)."""

    def __init__(self, out: str) -> None:
        self.out, self.times, self.start = out, [], 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.times.append(time.perf_counter() - self.start)

    def on_train_end(self, trainer, pl_module):
        if trainer.global_rank == 0:
            with open(self.out, "w") as f:
                json.dump(self.times, f)


def pairs(n: int, size: int = 64, vocab: int = 1000, length: int = 64) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    images, ids = torch.randn(2 * n, 3, size, size, generator=g), torch.randint(1, vocab, (2 * n, length), generator=g)
    heat = torch.rand(n, 1, size, size, generator=g)
    pair = lambda i: {"image": images[i], "input_ids": ids[i], "attention_mask": torch.ones(length, dtype=torch.long), "index": i}
    return [{"main": pair(i), "expert": {**pair(n + i), "heatmap": heat[i]}} for i in range(n)]


def run(find_unused: bool, steps: int, batch: int, out: str) -> list[float]:
    torch.manual_seed(0)
    module = ECLIPModule(preset="tiny", vocab_size=1000, priming_weight=0.1,
                         processor_kwargs={"patch_size": 8, "width": 128, "num_heads": 8})
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=DDPStrategy(start_method="spawn", find_unused_parameters=find_unused),
                        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[StepTimer(out)])
    # one epoch of exactly `steps` batches per rank
    trainer.fit(module, DataLoader(pairs(batch * 2 * steps), batch_size=batch))
    with open(out) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per variant, alternated")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps of each run not timed")
    parser.add_argument("--batch", type=int, default=16, help="main (and expert) pairs per process")
    args = parser.parse_args()
    torch.set_num_threads(1)
    medians: dict[str, list[float]] = {"plain ddp": [], "find_unused": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            for name, find_unused in (("plain ddp", False), ("find_unused", True)) if r % 2 == 0 else (("find_unused", True), ("plain ddp", False)):
                times = run(find_unused, args.steps, args.batch, os.path.join(tmp, "times.json"))
                medians[name].append(statistics.median(times[args.warmup :]))
                print(f"run {r} {name:<12} median step {1000 * medians[name][-1]:.1f} ms", flush=True)
    plain, unused = statistics.median(medians["plain ddp"]), statistics.median(medians["find_unused"])
    print(f"\n2 gloo processes, tiny preset, N = M = {args.batch} per process, {args.steps} steps/run "
          f"({args.warmup} warm-up), median over {args.runs} alternated runs of each run's median step")
    print(f"{'strategy':<34}{'step (ms)':>10}{'ratio':>8}")
    print(f"{'ddp (plain, idle processor at 0×)':<34}{1000 * plain:>10.1f}{1.0:>8.2f}")
    print(f"{'ddp_find_unused_parameters_true':<34}{1000 * unused:>10.1f}{unused / plain:>8.2f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
