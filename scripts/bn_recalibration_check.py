"""Are a checkpoint's BatchNorm running statistics what its test score reflects? (docs/eclip_positive_control.md)

eCLIP encodes its expert sub-batch (heatmap-processed, optionally mixed-up views) in a forward of
its own. With a BatchNorm image tower (`tiny_cnn`'s ResNet) every such forward moves the running
mean and variance towards the processed views' statistics, which the test images never have. This
script scores a checkpoint's zero-shot macro-F1 on a manifest's test split twice: as saved, and
after the BatchNorm running statistics are re-estimated on `--rows` train images of the main stream
(plain images, the evaluation transform; a cumulative average, `momentum=None`, weights untouched).
If the two scores differ, the saved statistics — not the weights — carry that part of the score.

    python scripts/bn_recalibration_check.py data/pc_inf_g25/manifest.csv runs/.../seed0/checkpoints/last.ckpt ...

Prints one row per checkpoint (F1 as saved, after recalibration, their difference, and how far the
saved running means are from the re-estimated ones); ``--out`` writes the rows as JSON. ``--write``
also saves each checkpoint with the re-estimated statistics beside it as
``<name>.bn_recalibrated.ckpt`` (the original is never touched; everything but the BatchNorm buffers
is copied as it is), for `test --ckpt_path` — e.g. an eCLIP checkpoint with a CNN tower trained
before the fix of commit 8a90fc9 (docs/eclip.md, "BatchNorm towers").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate(tower: nn.Module, images: torch.Tensor, batch_size: int = 64) -> None:
    """Re-estimate `tower`'s BatchNorm running statistics on `images` (N, C, H, W) as a cumulative average."""
    layers = batchnorm_layers(tower)
    saved = [(m.momentum, m.training) for m in layers]
    was_training = tower.training
    tower.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over every batch below
        m.train()
    for start in range(0, len(images), batch_size):
        tower(images[start:start + batch_size])
    for m, (momentum, training) in zip(layers, saved):
        m.momentum = momentum
        m.train(training)
    tower.train(was_training)


def write_recalibrated(checkpoint: str, tower: nn.Module, record: dict) -> Path:
    """``<checkpoint stem>.bn_recalibrated.ckpt``: the checkpoint with `tower`'s BatchNorm buffers, written atomically."""
    from medalign.models.checkpoint import load_checkpoint_file
    from medalign.run_folder import atomic_path

    saved = load_checkpoint_file(checkpoint)
    state = saved.get("state_dict")
    if not isinstance(state, dict):
        raise ValueError(f"{checkpoint}: not a Lightning checkpoint (no state_dict): nothing to write")
    buffers = {f"model.image_encoder.{name}": value for name, value in tower.named_buffers()
               if name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")}
    missing = sorted(set(buffers) - set(state))
    if missing:
        raise ValueError(f"{checkpoint}: its state_dict has no {missing[:3]} (…{len(missing)} keys): not this model's checkpoint")
    state.update({key: value.detach().clone().to(state[key].dtype) for key, value in buffers.items()})
    saved["medalign_bn_recalibrated"] = record
    target = Path(checkpoint).with_suffix(".bn_recalibrated.ckpt")
    with atomic_path(target, fsync=True) as tmp:
        torch.save(saved, tmp)
    return target


def score(checkpoint: str, manifest: str, rows: int, seed: int, write: bool = False) -> dict:
    import pandas as pd

    from medalign import load_checkpoint_encoder
    from medalign.data.prompts import load_prompts
    from medalign.data.transforms import load_image
    from medalign.evaluation.encoders import checkpoint_hparams
    from medalign.evaluation.tasks.zero_shot import zero_shot_classify
    from medalign.paths import resolve_config

    encoder = load_checkpoint_encoder(checkpoint, manifest=manifest)
    _, data = checkpoint_hparams(checkpoint)
    frame = pd.read_csv(manifest, keep_default_na=False)
    classes = list(data["label_columns"])
    prompts = load_prompts(resolve_config(data["prompts"], (".json",)), classes)
    root = Path(manifest).parent

    def images(paths) -> torch.Tensor:
        return torch.stack([encoder.transform(load_image(root / p))[0] for p in paths])

    with torch.no_grad():
        prompt_emb = [torch.nn.functional.normalize(encoder.encode_texts(prompts[c]), dim=-1) for c in classes]
    test = frame[frame["split"] == "test"]
    test_images = images(test["image"])
    labels = test[classes].to_numpy(dtype=float)

    def f1() -> float:
        with torch.no_grad():
            emb = torch.cat([encoder.encode_images(test_images[i:i + 128]) for i in range(0, len(test_images), 128)])
        return float(zero_shot_classify(emb, labels, prompt_emb, classes)["macro_f1"])

    tower = encoder.model.image_encoder
    layers = batchnorm_layers(tower)
    if not layers:
        return {"checkpoint": checkpoint, "batchnorm_layers": 0}
    before = f1()
    saved_means = [m.running_mean.clone() for m in layers]
    train = frame[frame["split"] == "train"]
    pick = np.random.default_rng(seed).choice(len(train), size=min(rows, len(train)), replace=False)
    recalibrate(tower, images(train["image"].iloc[np.sort(pick)]))
    after = f1()
    shift = [float((s - m.running_mean).norm() / m.running_mean.norm().clamp_min(1e-12)) for s, m in zip(saved_means, layers)]
    out = {"checkpoint": checkpoint, "batchnorm_layers": len(layers), "f1_saved": before, "f1_recalibrated": after,
           "difference": after - before, "running_mean_shift_median": float(np.median(shift)),
           "running_mean_shift_max": float(np.max(shift)), "rows": int(len(pick))}
    if write:
        record = {"manifest": str(manifest), "rows": int(len(pick)), "seed": seed, "from": str(checkpoint)}
        out["written"] = str(write_recalibrated(checkpoint, tower, record))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", help="the manifest whose test split is scored and whose train split recalibrates")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--rows", type=int, default=1024, help="train images for the running statistics")
    parser.add_argument("--seed", type=int, default=0, help="which train images")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    parser.add_argument("--write", action="store_true",
                        help="also save <checkpoint>.bn_recalibrated.ckpt beside each checkpoint (the original is kept)")
    args = parser.parse_args()
    results = []
    print("checkpoint | F1 as saved | F1 recalibrated | difference | running-mean shift (median, max)")
    for checkpoint in args.checkpoints:
        row = score(checkpoint, args.manifest, args.rows, args.seed, write=args.write)
        results.append(row)
        if not row["batchnorm_layers"]:
            print(f"{checkpoint} | no BatchNorm layer in the image tower: nothing to recalibrate")
            continue
        print(f"{checkpoint} | {row['f1_saved']:.4f} | {row['f1_recalibrated']:.4f} | {row['difference']:+.4f} | "
              f"{row['running_mean_shift_median']:.3f}, {row['running_mean_shift_max']:.3f}"
              + (f" | written {row['written']}" if "written" in row else ""), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
