"""Batched vs one-at-a-time λ-sweep probes: wall time, ratios and max |AUC difference| (docs/gap_sweep.md, "Speed").

Three columns on the same data and seeds:
* batched: `batched_probe.train_probes`, all (λ, seed) probes as one model (fp32, and bf16 matmuls);
* sequential: ``sequential=True`` — one probe at a time, but with the batched trainer's data order,
  initialisation and fused precomputation (same math: AUCs agree to float rounding);
* reference: `tests.oracles.gap_probe.reference_sweep`, the plain researcher's loop (lambda_shift, nn.Linear,
  DataLoader, macro AUC) that the "one probe at a time ≈ 4.2 s each" baseline refers to. Its
  minibatch order and initialisation differ, so it is compared by mean AUC per λ over seeds.

    python -m scripts.bench_gap_sweep                      # the reference setting: 10k pairs, 512-d, 5 labels,
                                                           # 11 λ × 5 seeds, 100 epochs, batch 512
    python -m scripts.bench_gap_sweep --pairs 3000 --epochs 20   # a quick check on a shared CPU

The embeddings are random but learnable: each modality is a cone (a shared offset per modality,
so there is a modality gap) plus label prototypes plus noise; 10 % of the pairs are the test split
and 10 % of the rest is carved out per seed for early stopping. Both modes run in the same process
on the same data and seeds; timings exclude data generation and scoring.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import torch.nn.functional as F

from medalign.studies.gap.batched_probe import ProbeConfig
from medalign.studies.gap.sweep import DEFAULT_LAMBDAS, default_seeds, run_gap_sweep
from tests.oracles.gap_probe import reference_sweep  # run from the repository root with `python -m`


def synthetic_pairs(n: int, dim: int, n_labels: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(v (n, dim), t (n, dim), y (n, n_labels)): two label-bearing cones with a gap between them."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, n_labels, generator=g) < 0.25).float()
    cone_v, cone_t = torch.randn(2, dim, generator=g) * (1.5 / dim**0.5)  # ‖cone‖ ≈ 1.5
    protos_v, protos_t = torch.randn(2, n_labels, dim, generator=g) * (3.0 / dim**0.5)  # ‖prototype‖ ≈ 3
    v = F.normalize(cone_v + y @ protos_v + torch.randn(n, dim, generator=g) * (3.0 / dim**0.5), dim=1)
    t = F.normalize(cone_t + y @ protos_t + torch.randn(n, dim, generator=g) * (3.0 / dim**0.5), dim=1)
    return v, t, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--labels", type=int, default=5)
    parser.add_argument("--lambdas", type=int, default=len(DEFAULT_LAMBDAS), help="grid size over [0, 1]")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-sequential", action="store_true", help="time the batched mode only")
    parser.add_argument("--skip-bf16", action="store_true", help="skip the bf16-matmul batched run")
    parser.add_argument("--skip-reference", action="store_true", help="skip the plain reference implementation")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    v, t, y = synthetic_pairs(args.pairs, args.dim, args.labels)
    n_test = args.pairs // 10
    test, train = (v[:n_test], t[:n_test], y[:n_test]), (v[n_test:], t[n_test:], y[n_test:])
    lambdas = list(np.linspace(0, 1, args.lambdas).round(4)) if args.lambdas > 1 else [0.0]
    # the paper's SGD for a fixed number of epochs: a timing setting, the probes need not converge
    cfg = ProbeConfig.paper(max_steps=None, max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    common = dict(lambdas=lambdas, seeds=default_seeds(args.seeds), config=cfg, references=False)
    print(f"{len(train[0])} train / {n_test} test pairs, {args.dim}-d, {args.labels} labels, {len(lambdas)} λ × "
          f"{args.seeds} seeds = {len(lambdas) * args.seeds} probes, ≤ {args.epochs} epochs, batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")

    run_gap_sweep(train, None, test, **{**common, "lambdas": lambdas[:1], "seeds": [0], "config": replace(cfg, max_epochs=1)})  # warm-up
    batched = run_gap_sweep(train, None, test, **common)
    print(f"batched fp32:   {batched.seconds:8.2f} s   epochs run per probe {batched.epochs.min()}–{batched.epochs.max()}")
    fast = None
    if not args.skip_bf16:
        fast = run_gap_sweep(train, None, test, **{**common, "config": replace(cfg, matmul_dtype="bfloat16")})
        print(f"batched bf16:   {fast.seconds:8.2f} s   (bf16 matmuls, fp32 weights)")
    print("λ:        " + " ".join(f"{lam:6.2f}" for lam in lambdas))
    print("AUC mean: " + " ".join(f"{a:6.4f}" for a in batched.auc_mean))
    sequential = None
    if not args.skip_sequential:
        sequential = run_gap_sweep(train, None, test, **common, sequential=True)
        print(f"sequential:     {sequential.seconds:8.2f} s   ({sequential.seconds / sequential.auc.size:.2f} s per probe, "
              f"the batched trainer's math one probe at a time)")
    reference = None
    if not args.skip_reference:
        started = time.perf_counter()
        ref_auc, _ = reference_sweep(train, None, test, lambdas, default_seeds(args.seeds), "multilabel", args.labels, cfg)
        reference = time.perf_counter() - started
        print(f"reference:      {reference:8.2f} s   ({reference / ref_auc.size:.2f} s per probe, plain nn.Linear + DataLoader)")
        print("ref AUC:  " + " ".join(f"{a:6.4f}" for a in ref_auc.mean(1)))
    for name, run in (("fp32", batched), ("bf16", fast)):
        if run is None:
            continue
        if sequential is not None:
            diff = np.abs(run.auc - sequential.auc).max()
            per_class = np.nanmax(np.abs(run.per_class_auc - sequential.per_class_auc))
            print(f"ratio sequential / batched {name}: {sequential.seconds / run.seconds:5.1f}×   max |AUC difference| "
                  f"macro {diff:.1e}, per class {per_class:.1e}; same stopping epochs: {bool((run.epochs == sequential.epochs).all())}")
        if reference is not None:
            mean_diff = np.abs(run.auc_mean - ref_auc.mean(1)).max()
            print(f"ratio reference  / batched {name}: {reference / run.seconds:5.1f}×   max |mean AUC over seeds difference| "
                  f"per λ {mean_diff:.1e} (seed sd of the batched AUC ≤ {run.auc_std.max():.1e})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
