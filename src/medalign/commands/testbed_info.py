"""`medalign testbed-info MANIFEST`: what the reports, images and gaze heatmaps of a manifest carry.

Prints the out-of-sample share of heatmap variance explained by the report (bag-of-words ridge
regression), by the image and by both (the rest: noise), the label AUC from the report, the
heatmap and both, and the retrieval ceiling (share of test reports that are unique). Needs rows
with heatmaps; see medalign/synthetic/testbed/info.py and docs/testbed.md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from medalign.commands.flags import HelpFormatter


def run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="medalign testbed-info", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("manifest", help="manifest.csv with a heatmap column")
    parser.add_argument("--grid", type=int, default=16, help="images and heatmaps are compared on a grid² grid")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    from medalign.synthetic.testbed.info import testbed_info

    info = testbed_info(args.manifest, grid=args.grid, folds=args.folds, seed=args.seed)
    print(f"== testbed-info: {args.manifest} ({info.rows} rows with heatmaps, {args.folds}-fold, {args.grid}² grid) ==")
    print("heatmap variance explained (out of sample R²)")
    print(f"  by the report       {info.r2_report:7.3f}")
    print(f"  by the image        {info.r2_image:7.3f}")
    print(f"  by both             {info.r2_both:7.3f}")
    print(f"  noise (1 - both)    {info.noise:7.3f}")
    print("label macro-AUC (out of sample)")
    print(f"  from the report     {info.auc_report:7.3f}")
    print(f"  from the heatmap    {info.auc_heatmap:7.3f}")
    print(f"  from both           {info.auc_both:7.3f}")
    print(f"retrieval ceiling (unique test reports) {info.retrieval_ceiling:.3f} of {info.test_rows} test rows")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(asdict(info), handle, indent=2)
