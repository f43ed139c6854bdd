"""Step time of eCLIP with p_curr = 0 and p_curr = 1 against CLIP on the same batch.

A training step = forward, `compute_losses`, backward and AdamW step, on random tensors in
the batch format. A step without experts must cost a CLIP step (ratio ≈ 1.00); a step with
experts adds one processor call, M image and M text forwards.

    python scripts/bench_eclip_overhead.py                       # tiny preset, CPU
    python scripts/bench_eclip_overhead.py --preset swin_t --batch 64 --expert-batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning as L
import torch

from bench_common import module_step
from medalign.training.eclip import ECLIPModule
from medalign.models import get_preset
from medalign.training.module import ContrastiveModule


def make_batch(n: int, size: int, vocab: int, length: int, device: str, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {
        "image": torch.randn(n, 3, size, size, generator=g),
        "input_ids": torch.randint(1, vocab, (n, length), generator=g),
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "heatmap": torch.rand(n, 1, size, size, generator=g),
        "index": torch.arange(seed * 10_000, seed * 10_000 + n),
    }
    return {k: v.to(device) for k, v in batch.items()}


def build(kind: str, args) -> L.LightningModule:
    torch.manual_seed(0)
    common = dict(preset=args.preset, vocab_size=args.vocab)
    if kind == "clip":
        module = ContrastiveModule(**common)
    elif kind == "eclip_p0":  # curriculum that never draws experts, outside the priming phase
        module = ECLIPModule(**common, curriculum={"cold_start": 1.0, "warmup": 0.0, "cooldown": 0.0}, priming_weight=0.0)
    else:  # every step draws experts
        module = ECLIPModule(**common, use_curriculum=False, priming_weight=0.0)
    module.trainer = L.Trainer(accelerator="cpu" if args.device == "cpu" else "gpu", devices=1, logger=False,
                               enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    if isinstance(module, ECLIPModule):
        module.total_steps = 1000
    module.to(args.device).train()
    module.bench_optimizer = torch.optim.AdamW([p for g in module.param_groups() for p in g["params"]], lr=1e-5)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--expert-batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per variant (after 3 warm-up steps)")
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--length", type=int, default=64, help="tokens per report")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    size = get_preset(args.preset).image_size
    batch = {**make_batch(args.batch, size, args.vocab, args.length, args.device, 0),
             "expert": make_batch(args.expert_batch, size, args.vocab, args.length, args.device, 1)}
    variants = {k: build(k, args) for k in ("clip", "eclip_p0", "eclip_p1")}
    for module in variants.values():
        for _ in range(3):
            module_step(module, module.bench_optimizer, batch)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.steps):  # interleaved so load drifts hit every variant alike
        for kind, module in variants.items():
            start = time.perf_counter()
            module_step(module, module.bench_optimizer, batch)
            times[kind].append(time.perf_counter() - start)
    clip = statistics.median(times["clip"])
    print(f"preset {args.preset}, batch N={args.batch}, expert sub-batch M={args.expert_batch}, device {args.device}, "
          f"{args.steps} interleaved steps, median step time")
    print(f"{'variant':<22}{'step (ms)':>12}{'vs CLIP':>10}")
    for kind, label in (("clip", "CLIP"), ("eclip_p0", "eCLIP, p_curr = 0"), ("eclip_p1", "eCLIP, p_curr = 1")):
        t = statistics.median(times[kind])
        print(f"{label:<22}{1000 * t:>12.1f}{t / clip:>10.2f}")
    print(f"expected at p = 1 if cost ∝ images+texts: ≈ {(args.batch + args.expert_batch) / args.batch:.2f} (+ processor)")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
