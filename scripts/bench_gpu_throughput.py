"""Training throughput (pairs/s) of medalign's `clip_swin.yaml` vs open_clip's own training loop.

Both sides train the same architecture from the same initial weights on one GPU: medalign's
`ContrastiveModule` inside Lightning (the config's model settings and precision), and an
open_clip ``CustomTextCLIP`` (timm Swin-T image tower + Hugging Face BERT text tower, mapped
from medalign's model by `medalign.export.open_clip_model.open_clip_parts` and loaded with
``strict=True``) trained by ``open_clip_train.train.train_one_epoch`` with open_clip's
``ClipLoss``, AdamW and cosine schedule. One pre-collated batch stays on the GPU, so the data
path is excluded (scripts/bench_loader.py measures it). Trials alternate between the two; the
median pairs/s of each and their ratio (medalign ÷ open_clip) are printed.

    python scripts/bench_gpu_throughput.py [--batch 64] [--steps 60] [--warmup 10] [--trials 3]
    python scripts/bench_gpu_throughput.py --tiny      # CPU smoke run: tiny preset, a few steps

Each side uses its own defaults: medalign requests fused AdamW on CUDA (medalign.optim), open_clip's
``main`` builds a plain AdamW. Text: `--length` real tokens per report, no padding.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import torch
import yaml

from medalign.paths import CONFIG_DIR


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_batch(batch: int, image_size: int, length: int, vocab: int, device: str) -> dict[str, torch.Tensor]:
    """A fixed batch on `device`: images (B, 3, S, S), token ids (B, L) with no padding (ids ≥ 5)."""
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(batch, 3, image_size, image_size, generator=g).to(device),
        "input_ids": torch.randint(5, vocab, (batch, length), generator=g).to(device),
        "attention_mask": torch.ones(batch, length, dtype=torch.long, device=device),
        "index": torch.arange(batch, device=device),
    }


def model_settings(args: argparse.Namespace) -> tuple[dict[str, Any], str, int]:
    """`clip_swin.yaml`'s model init_args, precision and log interval (the tiny preset with --tiny)."""
    config = yaml.safe_load((CONFIG_DIR / "clip_swin.yaml").read_text())
    init = {k: v for k, v in config["model"]["init_args"].items() if v is not None}
    init["vocab_size"] = args.vocab
    precision = config["trainer"]["precision"]
    if args.tiny:
        init["preset"], precision = "tiny", "32-true"
    return init, args.precision or precision, int(config["trainer"]["log_every_n_steps"])


def build_medalign(init: dict[str, Any]):
    from medalign.training.module import ContrastiveModule

    torch.manual_seed(0)
    return ContrastiveModule(**init)


def medalign_pairs_per_s(args, init, precision, log_every, batch) -> float:
    """Pairs/s of `ContrastiveModule` in `Trainer.fit` over the steps after the warm-up."""
    import lightning as L
    from torch.utils.data import DataLoader

    device = "cuda" if args.device == "cuda" else "cpu"
    marks: dict[str, float] = {}

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, b, batch_idx) -> None:
            if batch_idx == args.warmup:
                _sync(device)
                marks["start"] = time.perf_counter()

        def on_train_end(self, trainer, pl_module) -> None:
            _sync(device)
            marks["end"] = time.perf_counter()

    module = build_medalign(init)
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=args.steps, precision=precision,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        log_every_n_steps=log_every, callbacks=[Clock()],
    )
    trainer.fit(module, train_dataloaders=DataLoader([batch] * args.steps, batch_size=None))
    return (args.steps - args.warmup) * len(batch["index"]) / (marks["end"] - marks["start"])


def build_open_clip(init: dict[str, Any], args: argparse.Namespace, folder: Path):
    """open_clip's CustomTextCLIP with medalign's architecture and initial weights (strict load)."""
    from open_clip.model import CustomTextCLIP

    from medalign.export.open_clip_model import open_clip_parts
    from medalign.models import ModelSpec

    module = build_medalign(init)
    spec = ModelSpec.from_hparams(module.hparams)
    tokenizer = SimpleNamespace(pad_token_id=0)  # ids are ≥ 5: no position is masked
    parts = open_clip_parts(module.model, spec, tokenizer, args.image_size, args.length, str(folder))
    parts.hf_config.save_pretrained(folder)
    cfg = parts.model_cfg
    model = CustomTextCLIP(cfg["embed_dim"], cfg["vision_cfg"], {**cfg["text_cfg"], "hf_model_pretrained": False}, output_dict=True)
    model.load_state_dict(parts.state_dict, strict=True)
    return model, module.hparams


def open_clip_pairs_per_s(args, init, precision, log_every, batch, folder: Path) -> float:
    """Pairs/s of ``open_clip_train.train.train_one_epoch`` over the steps after the warm-up."""
    from open_clip.loss import ClipLoss
    from open_clip_train.scheduler import cosine_lr
    from open_clip_train.train import train_one_epoch

    from medalign.optim import param_groups

    model, hp = build_open_clip(init, args, folder)
    model = model.to(args.device)
    groups = param_groups(model.named_parameters(), hp["weight_decay"])  # open_clip main's exclusion rule
    optimizer = torch.optim.AdamW(groups, lr=hp["lr"], betas=tuple(hp["betas"]), eps=hp["eps"])
    scheduler = cosine_lr(optimizer, hp["lr"], int(hp["warmup_fraction"] * args.steps), args.steps)
    run_args = SimpleNamespace(
        device=args.device, precision={"bf16-mixed": "amp_bf16", "16-mixed": "amp"}.get(precision, "fp32"),
        distill=False, accum_freq=1, skip_scheduler=False, grad_clip_norm=None, horovod=False, rank=0, local_rank=0,
        world_size=1, log_every_n_steps=log_every, batch_size=len(batch["index"]), wandb=False,
    )
    scaler = torch.amp.GradScaler("cuda") if run_args.precision == "amp" else None
    pair = (batch["image"], batch["input_ids"])

    def data(n: int) -> dict[str, Any]:  # what train_one_epoch reads of open_clip_train's DataInfo
        return {"train": SimpleNamespace(set_epoch=lambda epoch: None, dataloader=_Loader(pair, n))}

    loss = ClipLoss()
    train_one_epoch(model, data(args.warmup), loss, 0, optimizer, scaler, scheduler, None, run_args)
    _sync(args.device)
    start = time.perf_counter()
    train_one_epoch(model, data(args.steps - args.warmup), loss, 1, optimizer, scaler, scheduler, None, run_args)
    _sync(args.device)
    return (args.steps - args.warmup) * len(batch["index"]) / (time.perf_counter() - start)


class _Loader:
    """`n` times the same (images, token ids) pair, with the sizes train_one_epoch logs."""

    def __init__(self, pair: tuple[torch.Tensor, torch.Tensor], n: int) -> None:
        self.pair, self.num_batches, self.num_samples = pair, n, n * len(pair[0])

    def __iter__(self):
        return iter([self.pair] * self.num_batches)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="pairs per step (clip_swin.yaml: 64 per GPU)")
    parser.add_argument("--length", type=int, default=128, help="tokens per report")
    parser.add_argument("--vocab", type=int, default=28996, help="tokenizer size (Bio_ClinicalBERT: 28996)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="first steps of each trial not timed")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--precision", default=None, help="override clip_swin.yaml's trainer.precision")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: tiny preset, 64 px, a few steps")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)
    args.image_size = 224
    if args.tiny:
        args.image_size, args.vocab = 64, 300
        args.batch, args.length = min(args.batch, 8), min(args.length, 16)
        args.steps, args.warmup, args.trials = min(args.steps, 4), min(args.warmup, 1), min(args.trials, 1)
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif not torch.cuda.is_available():
        parser.exit(2, "bench_gpu_throughput.py: no CUDA device; this benchmark measures GPU training throughput "
                       "(run it on a GPU machine, or use --tiny for a CPU smoke run)\n")
    else:
        args.device = "cuda"
    if not 0 <= args.warmup < args.steps:
        parser.error(f"--warmup ({args.warmup}) must be below --steps ({args.steps})")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    init, precision, log_every = model_settings(args)
    batch = make_batch(args.batch, args.image_size, args.length, args.vocab, args.device)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.trials):  # alternate so drift in machine state hits both alike
            theirs.append(open_clip_pairs_per_s(args, init, precision, log_every, batch, Path(folder)))
            ours.append(medalign_pairs_per_s(args, init, precision, log_every, batch))
            if args.device == "cuda":
                torch.cuda.empty_cache()
    result = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "preset": init["preset"],
        "precision": precision, "batch": args.batch, "length": args.length, "steps": args.steps, "warmup": args.warmup,
        "medalign_pairs_per_s": ours, "open_clip_pairs_per_s": theirs,
        "medalign_median": statistics.median(ours), "open_clip_median": statistics.median(theirs),
    }
    result["ratio"] = result["medalign_median"] / result["open_clip_median"]
    print(f"{result['device']}: preset {init['preset']}, {precision}, batch {args.batch}, {args.length} tokens, "
          f"{args.steps - args.warmup} timed steps x {args.trials} trials")
    print(f"open_clip train_one_epoch : {result['open_clip_median']:9.1f} pairs/s (median of {theirs})")
    print(f"medalign ContrastiveModule: {result['medalign_median']:9.1f} pairs/s (median of {ours})")
    print(f"ratio medalign / open_clip: {result['ratio']:9.3f}")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
