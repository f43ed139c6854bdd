"""Training-step overhead of `ContrastiveModule` inside Lightning vs a bare PyTorch loop.

Same model (same init), same pre-collated batch, same AdamW + warmup-cosine schedule, same
logit-scale clamp. Trials alternate between the two loops; the median step time of each is
printed with their ratio (target ≤ 1.05).

    python scripts/bench_train_step.py [--preset tiny] [--batch 32] [--steps 30] [--trials 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning as L
import torch
from torch.utils.data import DataLoader

from bench_common import add_model_arguments
from medalign.losses import clip_loss
from medalign.training.module import ContrastiveModule
from medalign.optim import build_optimizer, param_groups, warmup_cosine


class _StepTimer(L.Callback):
    """Time between consecutive batch starts: the whole step including every hook and the fetch."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._t = warmup, [], None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._t is not None and batch_idx > self.warmup:
            self.times.append(now - self._t)
        self._t = now

    def on_train_end(self, trainer, pl_module) -> None:
        self.times.append(time.perf_counter() - self._t)  # the last step


def make_batch(batch: int, image_size: int, length: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(batch, 3, image_size, image_size, generator=g),
        "input_ids": torch.randint(5, vocab, (batch, length), generator=g),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "index": torch.arange(batch),
    }


def lightning_steps(args, batch) -> list[float]:
    torch.manual_seed(0)
    module = ContrastiveModule(preset=args.preset, vocab_size=args.vocab)
    timer = _StepTimer(args.warmup)
    trainer = L.Trainer(
        accelerator="auto", devices=1, max_steps=args.steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, precision=args.precision,
        callbacks=[timer], log_every_n_steps=args.log_every,
    )
    trainer.fit(module, train_dataloaders=DataLoader([batch] * args.steps, batch_size=None))
    return timer.times


def bare_steps(args, batch) -> list[float]:
    torch.manual_seed(0)
    module = ContrastiveModule(preset=args.preset, vocab_size=args.vocab)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = module.model.to(device).train()
    optimizer = build_optimizer(param_groups(model.named_parameters(), 1e-3), 1e-4, (0.9, 0.98), 1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(args.steps, 0.1))
    batch = {k: v.to(device) for k, v in batch.items()}
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=args.precision == "bf16-mixed")
    times = []
    for step in range(args.steps):
        start = time.perf_counter()
        with autocast:
            out = model(batch["image"], batch["input_ids"], batch["attention_mask"])
            loss = clip_loss(out.image_emb, out.text_emb, out.logit_scale)
        if not torch.isfinite(loss):
            raise FloatingPointError("non-finite loss")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        model.clamp_logit_scale(100.0)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, vocab=500)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--log-every", type=int, default=20, help="trainer.log_every_n_steps (clip_swin.yaml: 20)")
    args = parser.parse_args()
    batch = make_batch(args.batch, args.image_size, args.length, args.vocab)
    lightning, bare = [], []
    for _ in range(args.trials):  # alternate so drift in machine load hits both alike
        bare += bare_steps(args, batch)
        lightning += lightning_steps(args, batch)
    b, l = statistics.median(bare), statistics.median(lightning)
    print(f"preset={args.preset} batch={args.batch} steps={args.steps}x{args.trials} (first {args.warmup} of each excluded), "
          f"log_every_n_steps={args.log_every}")
    print(f"bare PyTorch loop : {b * 1000:8.1f} ms/step (median)")
    print(f"ContrastiveModule : {l * 1000:8.1f} ms/step (median, inside Lightning)")
    print(f"ratio             : {l / b:8.3f}x  (target <= 1.05)")


if __name__ == "__main__":
    main()
