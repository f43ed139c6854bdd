"""`medalign saliency --ckpt CKPT --manifest M`: does the model look where the experts looked?

Scores the model's saliency (Grad-CAM, or attention rollout for ViT towers) against the gaze
heatmaps of a split's annotated rows with NSS, CC, KLD, SIM and AUC, next to a centre prior
and a randomly initialised model; writes saliency.json, saliency.md and PNG panels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from medalign.commands.flags import HelpFormatter


def _parser() -> argparse.ArgumentParser:
    from medalign.data.outside_paths import add_outside_paths_flag

    p = argparse.ArgumentParser(prog="medalign saliency", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--ckpt", required=True, help="medalign checkpoint (.ckpt)")
    p.add_argument("--manifest", required=True, help="manifest with a heatmap column (EGD-CXR / REFLACX / synthetic)")
    p.add_argument("--split", default="test", help="manifest split whose gaze rows are scored")
    p.add_argument("--method", default="gradcam", help="gradcam (any tower) or rollout (ViT towers)")
    p.add_argument("--text", choices=["report", "prompt"], default="report", help="the row's report or its class prompt")
    p.add_argument("--prompts", default=None, help="prompt JSON for --text prompt (default: the checkpoint's data.prompts)")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the checkpoint's)")
    p.add_argument("--batch-size", type=int, default=32, help="images per saliency batch")
    p.add_argument("--limit", type=int, default=None, help="first N gaze rows only")
    p.add_argument("--panels", type=int, default=8, help="rows drawn in the PNG (0: none)")
    p.add_argument("--no-baselines", action="store_true", help="skip the centre-prior and random-model rows")
    p.add_argument("--metrics-variant", choices=["mit", "medalign"], default="mit",
                   help="metric definitions: the MIT benchmark's (default) or medalign's first ones (docs/gaze.md)")
    p.add_argument("--device", default=None, help="where the model runs (default: cuda when available, else cpu)")
    p.add_argument("--out", default=None, help="output folder (default: the checkpoint's run folder: <run>/saliency_<split>)")
    add_outside_paths_flag(p)
    return p


def run(argv: list[str]) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    from medalign.data.prompts import load_prompts
    from medalign.data.tokenizer import load_tokenizer
    from medalign.evaluation.encoders import checkpoint_hparams, load_checkpoint_encoder
    from medalign.evaluation.results import format_table
    from medalign.evaluation.tasks.saliency import METRICS, saliency_agreement
    from medalign.paths import resolve_config
    from medalign.run_folder import RunFolder

    ckpt = Path(args.ckpt)
    if ckpt.is_dir():  # open_clip / transformers model folders have no timm image tower to take Grad-CAM or rollout on
        raise SystemExit(f"medalign saliency: --ckpt {ckpt} is a model folder; saliency needs a medalign checkpoint (.ckpt) "
                         "because its methods read the timm image tower. Folders work in test, gap-sweep and geometry.")
    encoder = load_checkpoint_encoder(ckpt, load_tokenizer(args.tokenizer) if args.tokenizer else None, manifest=args.manifest)
    prompts = None
    _, data = checkpoint_hparams(ckpt)
    if args.text == "prompt":
        source = args.prompts or data.get("prompts")
        if not source:
            raise SystemExit("medalign saliency: --text prompt needs --prompts (none saved in the checkpoint)")
        prompts = load_prompts(resolve_config(source, (".json",)))
    out = Path(args.out) if args.out else RunFolder.of_checkpoint(ckpt).analysis("saliency", args.split)
    out.mkdir(parents=True, exist_ok=True)
    result = saliency_agreement(
        encoder, args.manifest, args.split, args.method, args.text, prompts, batch_size=args.batch_size,
        device=args.device, limit=args.limit, baselines=not args.no_baselines, panels=args.panels, out_dir=out,
        uncertain=data.get("uncertain", "zeros"), blank=data.get("blank", "zeros"),  # the checkpoint's label policy
        variant=args.metrics_variant,
        allow_outside_paths=args.allow_outside_paths,
    )
    result.update(checkpoint=str(ckpt), manifest=str(args.manifest), split=args.split)
    (out / "saliency.json").write_text(json.dumps(result, indent=2))
    sources = [s for s in ("model", "centre_prior", "random_model") if s in result]
    body = [[s, *(f"{result[s][f'{m}_mean']:.3f} ± {result[s][f'{m}_sd']:.3f}" for m in METRICS)] for s in sources]
    table = format_table(["saliency", "NSS ↑", "CC ↑", "KLD ↓", "SIM ↑", "AUC ↑"], body, numeric=set())
    header = f"## {args.method} saliency vs expert gaze: {ckpt.name} on {Path(args.manifest).name} [{args.split}], {result['n']} rows"
    (out / "saliency.md").write_text(f"{header}\n\n{table}\n")
    print(f"{header}\n\n{table}\n\nwritten: {out}")
    return result
