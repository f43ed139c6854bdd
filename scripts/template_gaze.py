"""Write the template-gaze control manifest of a gaze manifest (docs/eclip_positive_control.md).

    python scripts/template_gaze.py data/synthetic/manifest.csv
    → data/synthetic/manifest_template_gaze.csv (+ heatmaps_template/): the train gaze rows'
      heatmaps replaced by leave-one-out keyed means built from the report alone
      (`medalign.methods.template_heatmaps`); every other column and row unchanged.
"""

from __future__ import annotations

import argparse
from collections import Counter

import pandas as pd

from medalign.methods.template_heatmaps import write_template_manifest

CHEXPERT5 = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest")
    parser.add_argument("--label-columns", nargs="+", default=CHEXPERT5)
    args = parser.parse_args()
    out = write_template_manifest(args.manifest, args.label_columns)
    levels = Counter(pd.read_csv(out, keep_default_na=False)["template_level"])
    levels.pop("", None)
    print(f"written {out}: {sum(levels.values())} train gaze rows templated; key level used: {dict(levels)}")


if __name__ == "__main__":
    main()
