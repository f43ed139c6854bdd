"""Step time of each training method against CLIP on the same batch, as a ratio of medians.

A step = forward, `loss_terms` (pair loss + objectives), backward and AdamW step, on one fixed
random batch; the variants are timed in turn (round-robin) so machine load hits them alike.
DACL adds an image forward of the mixed batch; m³-mix, SigLIP and the gap-closing terms only
add B×B work on the embeddings.

    python scripts/bench_methods.py                                  # tiny preset, CPU, prints JSON
    python scripts/bench_methods.py --out runs/bench_methods.json    # the step-time overhead table in docs/methods.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from bench_common import add_model_arguments, module_step
from medalign.methods.dacl import DACL
from medalign.methods.gap_closing import GapClosing
from medalign.methods.m3mix import M3Mix
from medalign.methods.siglip import SigLIP
from medalign.models import ModelSpec
from medalign.training.module import ContrastiveModule

VARIANTS = {  # name → (objectives, ModelSpec overrides), as in configs/methods/*.yaml
    "clip": ([], {}),
    "dacl": ([DACL(weight=1.0)], {}),
    "m3mix": ([M3Mix(weight=1.0)], {}),
    "siglip": ([SigLIP()], {"init_temperature": 0.1}),
    "gap_closing": ([GapClosing(align_weight=1.0, uniformity_weight=1.0)], {}),
}


def build(variant: tuple[list, dict], args) -> tuple[ContrastiveModule, torch.optim.Optimizer]:
    torch.manual_seed(0)
    objectives, spec = variant
    model = ModelSpec(preset=args.preset, vocab_size=args.vocab, **spec)
    module = ContrastiveModule(model=model, objectives=objectives).to(args.device).train()
    optimizer = torch.optim.AdamW([p for g in module.param_groups() for p in g["params"]], lr=1e-5)
    return module, optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per variant")
    parser.add_argument("--out", default=None, help="write the ratios as JSON here")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.randn(args.batch, 3, args.image_size, args.image_size, generator=g),
        "input_ids": torch.randint(1, args.vocab, (args.batch, args.length), generator=g),
        "attention_mask": torch.ones(args.batch, args.length, dtype=torch.long),
        "index": torch.arange(args.batch),
    }
    batch = {k: v.to(args.device) for k, v in batch.items()}
    modules = {name: build(options, args) for name, options in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for name, (module, optimizer) in modules.items():  # warm-up
        module_step(module, optimizer, batch)
    for _ in range(args.repeats):
        for name, (module, optimizer) in modules.items():
            start = time.perf_counter()
            module_step(module, optimizer, batch)
            times[name].append(time.perf_counter() - start)
    clip = statistics.median(times["clip"])
    result = {
        "setting": {k: getattr(args, k) for k in ("preset", "batch", "image_size", "device", "repeats")},
        "median_seconds": {name: statistics.median(t) for name, t in times.items()},
        "ratio_to_clip": {name: statistics.median(t) / clip for name, t in times.items()},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
