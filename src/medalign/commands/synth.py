"""`medalign synth [--source synthetic|openi] --out DIR`: write an embedded dataset.

``--source synthetic`` (default): the synthetic chest X-ray set with templated reports.
``--source openi``: the rendered Open-I set — real Open-I reports (shipped with torchxrayvision)
on images rendered from their MeSH terms (docs/openi_rendered.md).
``--testbed gaze``: the gaze test bed — real lung masks, lesion boxes and report language, gaze
that carries what the report leaves out (docs/testbed.md); `medalign testbed-info` measures it.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from medalign.commands.flags import HelpFormatter, field_comments

from medalign.synthetic.generate import SyntheticConfig, generate_synthetic
from medalign.synthetic.openi import OpenIConfig, generate_openi
from medalign.synthetic.testbed.generate import TestbedConfig, generate_testbed

_CONFIGS = {"synthetic": SyntheticConfig, "openi": OpenIConfig}
_TESTBEDS = {"gaze": TestbedConfig}
_DEMOS = {"synthetic": "demo.yaml", "openi": "demo_openi.yaml", "gaze": "demo_gaze.yaml"}


def _add_fields(parser: argparse.ArgumentParser, classes: dict[str, type]) -> None:
    """One flag per dataclass field (shared fields such as ``--seed`` once), its comment as help and its default(s)."""
    seen: dict[str, tuple[argparse.Action, list[tuple[str, str]]]] = {}
    for name, config_class in classes.items():
        kind_name = f"--testbed {name}" if name in _TESTBEDS else f"--source {name}"
        group = parser.add_argument_group(kind_name)
        defaults, comments = config_class(), field_comments(config_class)
        for field in fields(config_class):
            value = getattr(defaults, field.name)
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
            if field.name in seen:  # shared with an earlier source: only its default is added
                seen[field.name][1].append((shown, kind_name))
                continue
            flag = f"--{field.name.replace('_', '-')}"
            text = comments.get(field.name) or ("random seed" if field.name == "seed" else field.name.replace("_", " "))
            if isinstance(value, tuple):
                action = group.add_argument(flag, type=float, nargs=len(value), default=None, help=text)
            elif value is None:
                kind = float if "float" in str(field.type) else int if "int" in str(field.type) else str
                action = group.add_argument(flag, type=kind, default=None, help=text)
            else:
                action = group.add_argument(flag, type=type(value), default=None, help=text)
            seen[field.name] = (action, [(shown, kind_name)])
    for action, values in seen.values():
        if len(values) == len(classes) and len({v for v, _ in values}) == 1:
            action.help += f" (default: {values[0][0]})"
        else:
            action.help += " (default: " + "; ".join(f"{v} for {k}" for v, k in values) + ")"


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="medalign synth", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (manifest.csv, images/, heatmaps/, tokenizer/)")
    parser.add_argument("--source", choices=sorted(_CONFIGS), default=None, help="which embedded dataset (default synthetic)")
    parser.add_argument("--testbed", choices=sorted(_TESTBEDS), default=None, help="a test bed instead (docs/testbed.md)")
    _add_fields(parser, {**_CONFIGS, **_TESTBEDS})
    seen = {f.name for c in (*_CONFIGS.values(), *_TESTBEDS.values()) for f in fields(c)}
    args = parser.parse_args(argv)
    if args.testbed and args.source:
        parser.error("give --source or --testbed, not both")
    kind = args.testbed or args.source or "synthetic"
    config_class = {**_CONFIGS, **_TESTBEDS}[kind]
    names = {f.name for f in fields(config_class)}
    foreign = [n for n in seen - names if getattr(args, n) is not None]
    if foreign:
        option = f"--testbed {kind}" if args.testbed else f"--source {kind}"
        parser.error(f"{option} has no option(s) {', '.join('--' + n.replace('_', '-') for n in foreign)}")
    config = config_class(**{n: getattr(args, n) for n in names if getattr(args, n) is not None})
    if args.testbed == "gaze":
        path = generate_testbed(args.out, config)
        what = f"gaze test bed, {config.n} pairs; measure it with: medalign testbed-info {args.out}/manifest.csv"
    elif kind == "openi":
        path = generate_openi(args.out, config)
        what = "rendered images with real Open-I reports"
    else:
        path = generate_synthetic(args.out, config)
        what = f"{config.n} pairs"
    print(f"wrote {path} ({what}, {config.image_size} px); train with: "
          f"python train.py fit --config {_DEMOS[kind]} --data.manifest {path}")
