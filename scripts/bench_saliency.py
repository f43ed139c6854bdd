"""Saliency–gaze agreement throughput: rows per second on the tiny model, Grad-CAM and rollout.

Target (issue 15): 1,000 rows in under a minute on 2 CPU cores. Generates a synthetic set whose
test split is all gaze rows, builds an untrained tiny checkpoint-free encoder, and times
`saliency_agreement` with and without the two baselines (which triple the work), alternating
the variants and reporting medians.

    python scripts/bench_saliency.py [--rows 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from medalign.data.tokenizer import load_tokenizer
    from medalign.evaluation.encoders import MedAlignEncoder
    from medalign.evaluation.tasks.saliency import saliency_agreement
    from medalign.models import create_dual_encoder
    from medalign.synthetic import SyntheticConfig, generate_synthetic

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        n = int(args.rows / 0.9) + 10  # 90 % test split, every test row with gaze
        config = SyntheticConfig(n=n, image_size=64, split_fractions=(0.05, 0.05, 0.9), heatmap_fraction=0.0, test_heatmap_fraction=1.0)
        manifest = generate_synthetic(Path(tmp) / "s", config, progress=False)
        tokenizer = load_tokenizer(Path(tmp) / "s" / "tokenizer")
        torch.manual_seed(0)
        model = create_dual_encoder("tiny", vocab_size=len(tokenizer))
        encoder = MedAlignEncoder(model, tokenizer, max_length=64, image_size=64)
        variants = {
            "gradcam": dict(method="gradcam", baselines=False),
            "gradcam + baselines": dict(method="gradcam", baselines=True),
            "rollout": dict(method="rollout", baselines=False),
        }
        times: dict[str, list[float]] = {k: [] for k in variants}
        rows = 0
        for _ in range(args.repeats):
            for name, kwargs in variants.items():  # alternate the variants within each repeat
                start = time.perf_counter()
                result = saliency_agreement(encoder, manifest, "test", limit=args.rows, batch_size=args.batch_size,
                                            device="cpu", progress=False, **kwargs)
                times[name].append(time.perf_counter() - start)
                rows = result["n"]
    print(f"saliency–gaze agreement on {rows} rows (tiny model, 64 px, {torch.get_num_threads()} threads), median of {args.repeats}:")
    base = statistics.median(times["gradcam"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<22} {median:6.1f} s  ({rows / median:6.0f} rows/s, {median / base:4.2f}× gradcam)")


if __name__ == "__main__":
    main()
