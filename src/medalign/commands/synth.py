"""`medalign synth [--source synthetic|openi] --out DIR`: write an embedded dataset.

``--source synthetic`` (default): the synthetic chest X-ray set with templated reports.
``--source openi``: the rendered Open-I set — real Open-I reports (shipped with torchxrayvision)
on images rendered from their MeSH terms (docs/openi_rendered.md).
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from medalign.synthetic.generate import SyntheticConfig, generate_synthetic
from medalign.synthetic.openi import OpenIConfig, generate_openi

_CONFIGS = {"synthetic": SyntheticConfig, "openi": OpenIConfig}
_DEMOS = {"synthetic": "demo.yaml", "openi": "demo_openi.yaml"}


def _add_fields(parser: argparse.ArgumentParser, config_class: type, skip: set[str]) -> None:
    defaults = config_class()
    group = parser.add_argument_group(f"--source {'openi' if config_class is OpenIConfig else 'synthetic'}")
    for field in fields(config_class):
        if field.name in skip:
            continue
        skip.add(field.name)
        value = getattr(defaults, field.name)
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(value, tuple):
            group.add_argument(flag, type=float, nargs=len(value), default=None)
        elif value is None:
            group.add_argument(flag, type=int if field.name == "max_reports" else str, default=None)
        else:
            group.add_argument(flag, type=type(value), default=None)


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="medalign synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (manifest.csv, images/, heatmaps/, tokenizer/)")
    parser.add_argument("--source", choices=sorted(_CONFIGS), default="synthetic", help="which embedded dataset")
    seen: set[str] = set()
    for config_class in _CONFIGS.values():  # shared fields (seed, image_size, ...) are added once
        _add_fields(parser, config_class, seen)
    args = parser.parse_args(argv)
    config_class = _CONFIGS[args.source]
    names = {f.name for f in fields(config_class)}
    foreign = [n for n in seen - names if getattr(args, n) is not None]
    if foreign:
        parser.error(f"--source {args.source} has no option(s) {', '.join('--' + n.replace('_', '-') for n in foreign)}")
    config = config_class(**{n: getattr(args, n) for n in names if getattr(args, n) is not None})
    if args.source == "openi":
        path = generate_openi(args.out, config)
        what = "rendered images with real Open-I reports"
    else:
        path = generate_synthetic(args.out, config)
        what = f"{config.n} pairs"
    print(f"wrote {path} ({what}, {config.image_size} px); train with: "
          f"python train.py fit --config {_DEMOS[args.source]} --data.manifest {path}")
