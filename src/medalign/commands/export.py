"""`medalign export --ckpt CKPT --out DIR`: a trained model as a folder open_clip loads offline.

The folder holds ``open_clip_config.json``, ``open_clip_model.safetensors``, the text tower's
``config.json`` and tokenizer files, and a model card ``README.md``; load it with
``open_clip.create_model_and_transforms("local-dir:DIR")`` and ``open_clip.get_tokenizer("local-dir:DIR")``,
or evaluate it with ``medalign test --config eval/open_clip.yaml --evaluation.weights DIR``.
It is also the layout of a Hugging Face hub repository (see docs/export.md; nothing is uploaded).
"""

from __future__ import annotations

import argparse
from typing import Any

from medalign.commands.flags import HelpFormatter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medalign export", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a medalign checkpoint (.ckpt written by `medalign fit`)")
    parser.add_argument("--out", required=True, help="folder to write (new or empty unless --force)")
    parser.add_argument("--results", default=None, help="results.json of `medalign test` to put in the model card")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--hub-id", default=None, metavar="ORG/NAME",
                        help="the Hugging Face repository the folder will be uploaded to: the config then names the "
                             "text tower by this id, as `hf-hub:ORG/NAME` loading needs (default: the folder's path)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the checkpoint's data.tokenizer)")
    return parser


def run(argv: list[str]) -> dict[str, Any]:
    """Entry point of ``medalign export``; returns what `export_checkpoint` returns."""
    args = _parser().parse_args(argv)
    from medalign.data.tokenizer import load_tokenizer
    from medalign.export import export_checkpoint

    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else None
    result = export_checkpoint(args.ckpt, args.out, results=args.results, force=args.force,
                               hub_id=args.hub_id, tokenizer=tokenizer)
    diffs = result["differences"]
    print(f"exported {args.ckpt} → {result['out']}: {', '.join(result['files'])}")
    print(f"open_clip round trip (max abs difference): image {diffs['image']:.2e}, text {diffs['text']:.2e}; "
          f"logit scale {diffs['logit_scale']:.6g}")
    print(f"load: open_clip.create_model_and_transforms('local-dir:{result['out']}')")
    return result
