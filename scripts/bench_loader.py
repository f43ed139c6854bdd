"""Loader throughput (pairs/s) through the real Dataset + DataLoader + Collator, beside the model's own step rate.

Generates (once, cached under ``--cache``) a few hundred full-size synthetic radiograph JPEGs
(2,500 × 3,000, quality 95, as MIMIC-CXR-JPG) with reports and a tokenizer, then times every
variant × worker count, alternating variants inside each trial; prints medians over trials and
the ratio loader pairs/s ÷ model pairs/s (≥ 1: the loader keeps up). Variants are a table
(`VARIANTS`): add one with a name and a dataset factory.

    python scripts/bench_loader.py [--n 256] [--image-size 224] [--batch 32] [--workers 1 2 all]
        [--variants full-decode fast-decode resized-512 shards] [--trials 3] [--model-preset tiny]

Results: docs/data_loading.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


@dataclass(frozen=True)
class Variant:
    """One way of feeding the model: a name and a dataset factory ``(args, cache) -> Dataset``."""

    help: str
    dataset: Callable[[argparse.Namespace, Path], Dataset]


def _manifest_dataset(which: str, fast_decode: bool) -> Callable[[argparse.Namespace, Path], Dataset]:
    def make(args: argparse.Namespace, cache: Path) -> Dataset:
        from medalign.data.dataset import ImageTextDataset
        from medalign.data.manifest import read_manifest
        from medalign.data.transforms import PairTransform

        path = cache / "full" / "manifest.csv" if which == "full" else resized_manifest(cache, args.resize)
        return ImageTextDataset(read_manifest(path), PairTransform(args.image_size, train=True), fast_decode=fast_decode)

    return make


def _shard_dataset(args: argparse.Namespace, cache: Path) -> Dataset:
    """The full-size JPEGs packed by `medalign shard` (litdata chunks), read like `data.format: shards`."""
    from medalign.data.shard_writer import write_shards
    from medalign.data.shards import ShardDataset, ShardSet
    from medalign.data.transforms import PairTransform

    folder = cache / "shards_full"
    if not (folder / "medalign_shards.json").is_file():
        write_shards(cache / "full" / "manifest.csv", folder, num_workers=os.cpu_count() or 1)
    shards = ShardSet(str(folder))
    return ShardDataset(shards.split("train"), shards.url("train"), PairTransform(args.image_size, train=True), fast_decode=True)


VARIANTS: dict[str, Variant] = {
    "full-decode": Variant("full-size JPEG, PIL full decode (data.fast_decode: false)", _manifest_dataset("full", False)),
    "fast-decode": Variant("full-size JPEG, DCT-reduced decode (data.fast_decode: true)", _manifest_dataset("full", True)),
    "resized-512": Variant("`medalign resize --size 512` PNG cache", _manifest_dataset("resized", True)),
    "shards": Variant("the full-size JPEGs in `medalign shard` chunks, fast decode (data.format: shards)", _shard_dataset),
}


def generate(cache: Path, n: int, height: int, width: int, bases: int = 6) -> Path:
    """`n` JPEGs (height × width) from `bases` rendered radiographs (flipped, shifted, re-levelled) + manifest."""
    from PIL import Image, ImageFilter

    from medalign.synthetic.generate import SyntheticConfig, ensure_synthetic
    from medalign.synthetic.images import render_image

    out = cache / "full"
    if (out / "manifest.csv").is_file() and len(list((out / "images").glob("*.jpg"))) == n:
        return out / "manifest.csv"
    import pandas as pd

    small = ensure_synthetic(cache / "reports", SyntheticConfig(n=max(n, 64), image_size=32, seed=0)).parent

    texts = pd.read_csv(small / "manifest.csv")["text"].tolist()
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    rendered = []
    for b in range(bases):  # the renderer is square; render the long side and cut the width
        image = render_image([], height, np.random.default_rng(b)).image[:, (height - width) // 2 :][:, :width]
        rendered.append(np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(0.8))))  # detector blur
    for i in range(n):
        image = rendered[i % bases]
        image = np.roll(image[:, ::-1] if i % 2 else image, int(rng.integers(-60, 60)), axis=0)
        level = int(rng.integers(-12, 12))
        image = np.clip(image.astype(np.int16) + level, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(out / "images" / f"{i:05d}.jpg", quality=95)
    pd.DataFrame({"id": [f"{i:05d}" for i in range(n)], "image": [f"images/{i:05d}.jpg" for i in range(n)],
                  "text": [texts[i % len(texts)] for i in range(n)], "split": "train", "heatmap": ""}
                 ).to_csv(out / "manifest.csv", index=False)  # fmt: skip
    import shutil

    shutil.copytree(small / "tokenizer", out / "tokenizer", dirs_exist_ok=True)
    print(f"generated {n} JPEGs of {height} x {width} in {time.perf_counter() - start:.0f} s")
    return out / "manifest.csv"


def resized_manifest(cache: Path, size: int) -> Path:
    from medalign.commands.resize import resize_manifest

    path = cache / f"resized_{size}" / "manifest.csv"
    if not path.is_file():
        resize_manifest(cache / "full" / "manifest.csv", path.parent, size, workers=os.cpu_count() or 1)
    return path


def loader_pairs_per_s(dataset: Dataset, collate, batch: int, workers: int, batches: int) -> float:
    """Pairs/s over `batches` batches after a first (worker start-up) batch that is not timed."""
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0), drop_last=True)  # fmt: skip
    it = iter(loader)
    next(it)
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(it)["index"])
    return seen / (time.perf_counter() - start)


def model_pairs_per_s(preset: str, batch: int, length: int, vocab: int, steps: int = 6) -> float:
    """Training steps (forward, CLIP loss, backward, AdamW) per second × batch at the preset's own image size."""
    from medalign.losses import clip_loss
    from medalign.models.presets import get_preset
    from medalign.training.module import ContrastiveModule

    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ContrastiveModule(preset=preset, vocab_size=vocab).model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = get_preset(preset).image_size
    image = torch.randn(batch, 3, size, size, device=device)
    ids = torch.randint(5, vocab, (batch, length), device=device)
    mask = torch.ones_like(ids)
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        out = model(image, ids, mask)
        clip_loss(out.image_emb, out.text_emb, out.logit_scale).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="runs/bench_loader", help="generated images and manifests (reused)")
    parser.add_argument("--n", type=int, default=256, help="full-size JPEGs to generate")
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=2500)
    parser.add_argument("--image-size", type=int, default=224, help="training resolution")
    parser.add_argument("--resize", type=int, default=512, help="short side of the resized-cache variant")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=4, help="timed batches per measurement (after one untimed)")
    parser.add_argument("--workers", nargs="+", default=["1", "2", "all"], help="worker counts ('all' = every core)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--model-preset", default="tiny", help="model whose training step is the reference")
    args = parser.parse_args()
    cache = Path(args.cache)
    generate(cache, args.n, args.height, args.width)
    if "resized-512" in args.variants:
        resized_manifest(cache, args.resize)
    from medalign.data.dataset import Collator
    from medalign.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cache / "full" / "tokenizer")
    collate = Collator(tokenizer, max_length=256)
    cores = os.cpu_count() or 1
    workers = sorted({cores if w == "all" else int(w) for w in args.workers})
    datasets = {name: VARIANTS[name].dataset(args, cache) for name in args.variants}
    results: dict[tuple[str, int], list[float]] = {}
    for trial in range(args.trials):
        order = args.variants if trial % 2 == 0 else args.variants[::-1]  # alternate against load drift
        for w in workers:
            for name in order:
                rate = loader_pairs_per_s(datasets[name], collate, args.batch, w, args.batches)
                results.setdefault((name, w), []).append(rate)
                print(f"trial {trial} {name:<12} workers={w:<3} {rate:8.1f} pairs/s", flush=True)
    model = statistics.median(
        model_pairs_per_s(args.model_preset, args.batch, 64, tokenizer.vocab_size) for _ in range(args.trials)
    )
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({cores} cores)"
    from medalign.models.presets import get_preset

    size = get_preset(args.model_preset).image_size
    print(f"\nmodel {args.model_preset} training step at batch {args.batch}, {size} px, 64 tokens on {device}: {model:.1f} pairs/s")
    print(f"loader: {args.image_size} px random resized crop, {args.n} JPEGs of {args.height} x {args.width}")
    print(f"\n| variant | workers | loader pairs/s (median of {args.trials}) | ÷ model pairs/s |")
    print("|---|---:|---:|---:|")
    for (name, w), rates in results.items():
        median = statistics.median(rates)
        print(f"| {name} | {w} | {median:.1f} | {median / model:.2f} |")


if __name__ == "__main__":
    main()
