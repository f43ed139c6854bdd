"""`medalign synth --out DIR`: write the embedded synthetic chest X-ray dataset."""

from __future__ import annotations

import argparse
from dataclasses import fields

from medalign.synthetic.generate import SyntheticConfig, generate_synthetic


def run(argv: list[str]) -> None:
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(prog="medalign synth", description=run.__doc__ or __doc__)
    parser.add_argument("--out", required=True, help="output folder (manifest.csv, images/, heatmaps/, tokenizer/)")
    for field in fields(SyntheticConfig):
        value = getattr(defaults, field.name)
        if isinstance(value, tuple):
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=float, nargs=len(value), default=value)
        else:
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    config = SyntheticConfig(**{f.name: getattr(args, f.name) for f in fields(SyntheticConfig)})
    path = generate_synthetic(args.out, config)
    print(f"wrote {path} ({config.n} pairs, {config.image_size} px); train with: "
          f"python train.py fit --config demo.yaml --data.manifest {path}")
