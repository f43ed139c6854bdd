"""`medalign geometry --ckpt X --manifest M --split test`: the geometry table of a checkpoint.

Encodes one manifest split with a trained checkpoint (through the embedding cache, so a second
run or another evaluator reuses the vectors), prints the metrics `GeometryCallback` logs during
training as a Markdown table, and writes ``geometry.json`` and ``geometry_<split>.png`` to ``--out``.
"""

from __future__ import annotations


import argparse
import json
from pathlib import Path
from typing import Any

from medalign.commands.flags import HelpFormatter


def _parser() -> argparse.ArgumentParser:
    from medalign.data.outside_paths import add_outside_paths_flag

    parser = argparse.ArgumentParser(prog="medalign geometry", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a medalign checkpoint (.ckpt) or weights file, or a pretrained "
                        "model folder (open_clip hf-hub layout, or transformers CLIP/SigLIP such as MedSigLIP)")
    parser.add_argument("--manifest", required=True, help="manifest CSV/Parquet holding the split")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="manifest split to encode")
    parser.add_argument("--labels", nargs="*", default=None,
                        help="label columns for clustering and the histograms (default: the checkpoint's data.label_columns)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the checkpoint's data.tokenizer, else <manifest folder>/tokenizer)")
    parser.add_argument("--out", default=None, help="output folder (default: the checkpoint's run folder: <run>/geometry_<split>)")
    parser.add_argument("--max-pairs", type=int, default=None, help="measure a seeded subset of this many pairs (default: all)")
    parser.add_argument("--image-size", type=int, default=None, help="default: the checkpoint's data.image_size")
    parser.add_argument("--max-length", type=int, default=None, help="default: the checkpoint's data.max_length")
    parser.add_argument("--batch-size", type=int, default=64, help="encoder batch")
    parser.add_argument("--num-workers", type=int, default=0, help="image-loading worker processes")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--cache-dir", default=None, help="embedding cache (default: $MEDALIGN_CACHE_DIR or runs/cache)")
    parser.add_argument("--seed", type=int, default=0, help="subset, k-means and picture sampling seed")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    add_outside_paths_flag(parser)
    return parser


def run(argv: list[str]) -> dict[str, Any]:
    """Entry point of ``medalign geometry``; returns what it wrote to geometry.json."""
    args = _parser().parse_args(argv)
    import numpy as np
    import torch

    from medalign.data.tokenizer import load_tokenizer
    from medalign.evaluation.embeddings import get_embeddings
    from medalign.evaluation.encoders import checkpoint_hparams, load_checkpoint_encoder, load_pretrained_encoder
    from medalign.evaluation.geometry import geometry_metrics, geometry_table
    from medalign.evaluation.plots.geometry import plot_geometry
    from medalign.evaluation.plots.style import dataset_name
    from medalign.run_folder import RunFolder
    from medalign.training.callbacks import select_subset

    ckpt, manifest = Path(args.ckpt), Path(args.manifest)
    if not ckpt.exists():
        raise FileNotFoundError(f"--ckpt {ckpt} does not exist")
    if not manifest.is_file():
        raise FileNotFoundError(f"--manifest {manifest} does not exist")
    _, data = checkpoint_hparams(ckpt) if ckpt.is_file() else ({}, {})
    labels = list(args.labels if args.labels is not None else data.get("label_columns") or [])
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else None
    encoder = load_pretrained_encoder(ckpt) if ckpt.is_dir() else load_checkpoint_encoder(
        ckpt, tokenizer, manifest=manifest, max_length=args.max_length, image_size=args.image_size
    )
    emb = get_embeddings(
        encoder, manifest, args.split, labels, cache_dir=args.cache_dir, batch_size=args.batch_size,
        num_workers=args.num_workers, device=args.device, uncertain=data.get("uncertain", "zeros"),
        blank=data.get("blank", "zeros"), allow_outside_paths=args.allow_outside_paths,
    )
    rows = np.arange(len(emb))
    if args.max_pairs is not None:
        keep = select_subset(emb.index, args.max_pairs, args.seed)
        rows = np.flatnonzero(np.isin(emb.index, keep))
    image, text = (torch.from_numpy(x[rows]) for x in (emb.image, emb.text))  # (N, D) each
    metrics = geometry_metrics(image, text, emb.labels[rows] if labels else None, seed=args.seed)
    metrics["n_pairs"] = float(len(rows))

    out = Path(args.out) if args.out else RunFolder.of_checkpoint(ckpt).analysis("geometry", args.split)
    out.mkdir(parents=True, exist_ok=True)
    result = {"checkpoint": str(ckpt), "manifest": str(manifest), "split": args.split, "label_columns": labels, "metrics": metrics}
    (out / "geometry.json").write_text(json.dumps(result, indent=2))
    print(f"## geometry of {ckpt.name} on {dataset_name(manifest)} [{args.split}], {len(rows)} pairs\n")
    print(geometry_table(metrics))
    if not args.no_plot:
        picture = out / f"geometry_{args.split}.png"
        plot_geometry(image, text, emb.labels[rows] if labels else None, labels, picture,
                      title=f"{ckpt.name} on {dataset_name(manifest)} · {args.split}", seed=args.seed)
        print(f"\npicture: {picture}")
    print(f"json: {out / 'geometry.json'}")
    return result
