"""Time `medalign prepare` per 10k rows on fixtures in the published layouts, scaled up.

CheXpert-style: a train.csv of N rows (+ valid.csv) with empty image files; MIMIC-style: N images
(2 per study) with gzipped split/label/metadata CSVs and one report per study. Images are empty
files: existence is checked, pixels are not read (as in a real `prepare` without --resize).

    python -m scripts.bench_prepare [--chexpert 50000] [--mimic 20000]   (from the repository root)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.commands.prepare import build_parser
from medalign.prepare import ADAPTERS, write_manifest
from tests.data.adapters import fixtures  # run from the repository root with `python -m`


def chexpert_raw(parent: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    root = parent / "CheXpert-v1.0-small"
    for name, split, rows in (("train.csv", "train", n), ("valid.csv", "valid", 200)):
        paths = [f"CheXpert-v1.0-small/{split}/patient{i // 3:05d}/study{i % 3}/view1_frontal.jpg" for i in range(rows)]
        labels = rng.choice([1.0, 0.0, -1.0, np.nan], size=(rows, len(fixtures.CHEXPERT_LABELS)), p=[0.1, 0.1, 0.05, 0.75])
        frame = pd.DataFrame(labels, columns=fixtures.CHEXPERT_LABELS)
        frame.insert(0, "Path", paths)
        frame.insert(1, "Sex", rng.choice(["Female", "Male"], rows))
        frame.insert(2, "Age", rng.integers(18, 90, rows))
        frame.insert(3, "Frontal/Lateral", np.where(rng.random(rows) < 0.85, "Frontal", "Lateral"))
        frame.insert(4, "AP/PA", rng.choice(["AP", "PA"], rows))
        for path in paths:
            (parent / path).parent.mkdir(parents=True, exist_ok=True)
            (parent / path).touch()
        frame.to_csv(root / name, index=False)
    return root


def mimic_raw(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    subject = 10_000_000 + np.arange(n) // 4
    study = 50_000_000 + np.arange(n) // 2
    dicom = [f"{i:08x}-dicom" for i in range(n)]
    split = rng.choice(["train", "validate", "test"], n, p=[0.9, 0.05, 0.05])
    fixtures.csv_gz(pd.DataFrame(dict(dicom_id=dicom, study_id=study, subject_id=subject, split=split)), root / "mimic-cxr-2.0.0-split.csv.gz")
    meta = pd.DataFrame(dict(dicom_id=dicom, subject_id=subject, study_id=study, ViewPosition=rng.choice(["PA", "AP", "LATERAL"], n),
                             Rows=3056, Columns=2544))  # fmt: skip
    fixtures.csv_gz(meta, root / "mimic-cxr-2.0.0-metadata.csv.gz")
    studies = pd.DataFrame(dict(subject_id=subject, study_id=study)).drop_duplicates()
    labels = rng.choice([1.0, 0.0, -1.0, np.nan], size=(len(studies), len(fixtures.MIMIC_LABELS)), p=[0.1, 0.1, 0.05, 0.75])
    fixtures.csv_gz(pd.concat([studies.reset_index(drop=True), pd.DataFrame(labels, columns=fixtures.MIMIC_LABELS)], axis=1),
                    root / "mimic-cxr-2.0.0-chexpert.csv.gz")  # fmt: skip
    for s, t, d in zip(subject, study, dicom):
        folder = root / "files" / f"p{str(s)[:2]}" / f"p{s}" / f"s{t}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{d}.jpg").touch()
        report = folder.parent / f"s{t}.txt"
        if not report.exists():
            report.write_text(fixtures.REPORT)
    return root


def timed(name: str, root: Path, out: Path) -> tuple[float, float, int]:
    args = build_parser().parse_args([name, "--root", str(root), "--out", str(out)])
    start = time.perf_counter()
    prepared = ADAPTERS[name].build(root, args)
    parsed = time.perf_counter()
    write_manifest(prepared, out, root=root)
    return parsed - start, time.perf_counter() - parsed, prepared.rows_in


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chexpert", type=int, default=50_000)
    parser.add_argument("--mimic", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        for name, make, n in (("chexpert", lambda: chexpert_raw(tmp / "cx", args.chexpert), args.chexpert),
                              ("mimic-cxr", lambda: mimic_raw(tmp / "mimic", args.mimic), args.mimic)):  # fmt: skip
            (tmp / "cx").mkdir(exist_ok=True)
            make()
            root = tmp / "cx" / "CheXpert-v1.0-small" if name == "chexpert" else tmp / "mimic"
            parse_s, write_s, rows = timed(name, root, tmp / f"out_{name}")
            total = parse_s + write_s
            results[name] = total / rows * 10_000
            print(f"{name:10s} {rows:7d} rows: parse {parse_s:6.2f} s + write/validate {write_s:6.2f} s = {total:6.2f} s "
                  f"→ {results[name]:5.2f} s per 10k rows, {rows / total:8.0f} rows/s")  # fmt: skip
        print(f"mimic-cxr / chexpert time per row: {results['mimic-cxr'] / results['chexpert']:.2f}x "
              "(MIMIC also reads and parses one report file per study)")
        print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
