"""Export a trained run's image tower as a timm weights file (``model.image_weights``).

On an offline machine without ImageNet weights, the benchmark's transfer question (i) uses the
tower of a medalign run on *another* synthetic set as a stand-in for general-domain weights
(docs/benchmark.md, "Which method answers which question"):

    python train.py fit --config demo.yaml --data.manifest data/synthetic_seed1/manifest.csv \\
        --data.synthetic '{n: 3000, image_size: 64, seed: 1}' --trainer.max_epochs 4 \\
        --trainer.logger false --checkpoint.dirpath runs/benchmark/standin
    python scripts/export_image_tower.py runs/benchmark/standin/last.ckpt runs/benchmark/standin/image_tower.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medalign.models.weights import load_state_dict_file

PREFIX = "model.image_encoder.backbone."


def export_image_tower(checkpoint: str | Path, out: str | Path) -> int:
    """Write the checkpoint's image-tower tensors (timm names) to `out`; returns their count."""
    from safetensors.torch import save_file

    state = load_state_dict_file(checkpoint)
    tower = {k[len(PREFIX) :]: v.contiguous() for k, v in state.items() if k.startswith(PREFIX)}
    if not tower:
        raise ValueError(f"{checkpoint} has no '{PREFIX}*' tensors: is it a medalign timm/BERT run (not preset: open_clip)?")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(tower, str(out))
    return len(tower)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args()
    print(f"{export_image_tower(args.checkpoint, args.out)} tensors → {args.out}")
