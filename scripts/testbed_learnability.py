"""Can a tiny image tower see the gaze test bed's findings at all? (docs/testbed.md, "Which tiny tower")

Trains each named preset's image tower (`medalign.models.presets`) with a linear head,
supervised (binary cross-entropy on the five labels), on the train split of a test-bed
manifest, and prints the test split's per-class ROC AUC after every epoch, for each seed;
then the paired difference of the final macro-AUC between the first two presets
(`medalign.metrics.stats.paired_ci`). No text tower, no contrastive loss: it measures what
the pixels let each architecture learn, which bounds what its CLIP can learn.

    medalign synth --testbed gaze --shortcut 0 --out /tmp/tb_clean
    python scripts/testbed_learnability.py /tmp/tb_clean/manifest.csv --presets tiny tiny_cnn --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load_split(manifest: str, split: str, labels: list[str]) -> tuple["torch.Tensor", "torch.Tensor"]:  # noqa: F821
    """Images of one split as (N, 3, S, S) float tensors, (x − 0.5) / 0.5 per pixel (no augmentation), and (N, L) labels."""
    import pandas as pd
    import torch
    from PIL import Image

    frame = pd.read_csv(manifest, keep_default_na=False)
    frame = frame[frame["split"] == split]
    root = Path(manifest).parent
    pixels = np.stack([np.asarray(Image.open(root / p).convert("L"), dtype=np.float32) / 255.0 for p in frame["image"]])
    images = torch.from_numpy((pixels - 0.5) / 0.5)[:, None].expand(-1, 3, -1, -1).contiguous()
    return images, torch.tensor(frame[labels].to_numpy(dtype=np.float32))


def train_preset(preset: str, seed: int, train: tuple, test: tuple, epochs: int, lr: float, batch: int) -> list[list[float]]:
    """Per-epoch test AUC per label of `preset`'s image tower + linear head trained with BCE."""
    import torch
    from sklearn.metrics import roc_auc_score

    from medalign.models.image import ImageEncoder
    from medalign.models.presets import get_preset

    torch.manual_seed(seed)
    spec = get_preset(preset)
    tower = ImageEncoder(spec.image_model, **spec.image_kwargs)
    net = torch.nn.Sequential(tower, torch.nn.Linear(tower.num_features, train[1].shape[1]))
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-3)
    order = np.random.default_rng(seed)
    curve = []
    for _ in range(epochs):
        net.train()
        permutation = torch.from_numpy(order.permutation(len(train[0])))
        for start in range(0, len(train[0]), batch):
            idx = permutation[start:start + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(train[0][idx]), train[1][idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        net.eval()
        with torch.no_grad():
            scores = torch.cat([net(test[0][i:i + 256]) for i in range(0, len(test[0]), 256)]).numpy()
        curve.append([float(roc_auc_score(test[1][:, k], scores[:, k])) for k in range(scores.shape[1])])
    return curve


def main() -> None:
    import torch

    from medalign.metrics.stats import paired_ci
    from medalign.provenance import code_identity
    from medalign.synthetic.testbed.generate import TESTBED_LABELS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("--presets", nargs="+", default=["tiny", "tiny_cnn"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4, help="AdamW learning rate (demo_gaze.yaml's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=None, help="write the curves and provenance as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    labels = list(TESTBED_LABELS)
    train, test = load_split(args.manifest, "train", labels), load_split(args.manifest, "test", labels)
    results: dict = {"provenance": {**code_identity(), "manifest": args.manifest, "epochs": args.epochs, "lr": args.lr},
                     "labels": labels, "curves": {}}
    for seed in args.seeds:
        for preset in args.presets:
            curve = train_preset(preset, seed, train, test, args.epochs, args.lr, args.batch_size)
            results["curves"].setdefault(preset, {})[seed] = curve
            print(f"{preset:>9} seed {seed}: final AUC " + " ".join(f"{a:.3f}" for a in curve[-1])
                  + f"  macro {np.mean(curve[-1]):.3f}", flush=True)
    final = {p: [float(np.mean(results["curves"][p][s][-1])) for s in args.seeds] for p in args.presets}
    if len(args.presets) >= 2:
        a, b = args.presets[:2]
        ci = paired_ci(final[b], final[a])
        print(f"{b} − {a} final macro-AUC: {ci['mean_diff']:+.3f} (95 % CI {ci['low']:+.3f} to {ci['high']:+.3f}, "
              f"p = {ci['p_value']:.3g}, {ci['n']} seeds)")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
