"""The README's "Your own data" commands run as printed (paths swapped for a MIMIC-layout fixture).

Only speed overrides are added to `fit`/`test` (a few steps, small batches, no workers); no
undocumented flag (e.g. ``allow_outside_paths``) is needed between the commands.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest

from medalign.cli import main
from tests.prepare.fixtures import MIMIC_LABELS, csv_gz, image

README = Path(__file__).resolve().parents[1] / "README.md"
CLASSES = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
SPEED = {"fit": ["--trainer.max_steps", "2", "--trainer.max_epochs", "1", "--data.batch_size", "4",
                 "--data.num_workers", "0", "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"],
         "test": ["--data.batch_size", "4", "--data.num_workers", "0"]}


def walkthrough() -> list[list[str]]:
    """The command lines of the README's first code block under "Your own data"."""
    text = README.read_text()
    block = re.search(r"## Your own data.*?```bash\n(.*?)```", text, flags=re.S).group(1)
    return [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]


def mimic_like(root: Path, per_split: dict[str, int]) -> Path:
    """A MIMIC-CXR-JPG layout with reports, one finding per study (enough rows for every split)."""
    rows, meta, labels = [], [], []
    n = 0
    for split, count in per_split.items():
        for _ in range(count):
            subject, study, dicom = 10000000 + n, 50000000 + n, f"d{n}"
            finding = CLASSES[n % len(CLASSES)]
            rows.append(dict(dicom_id=dicom, study_id=study, subject_id=subject, split=split))
            meta.append(dict(dicom_id=dicom, subject_id=subject, study_id=study, ViewPosition="PA", Rows=40, Columns=30))
            labels.append({"subject_id": subject, "study_id": study, **{c: None for c in MIMIC_LABELS}, finding: 1.0})
            folder = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}"
            image(folder / f"s{study}" / f"{dicom}.jpg", (30, 40))
            (folder / f"s{study}.txt").write_text(f" FINAL REPORT\n FINDINGS: {finding.lower()} in study {n}.\n\n"
                                                  f" IMPRESSION: {finding.lower()}.\n")
            n += 1
    csv_gz(pd.DataFrame(rows), root / "mimic-cxr-2.0.0-split.csv.gz")
    csv_gz(pd.DataFrame(meta), root / "mimic-cxr-2.0.0-metadata.csv.gz")
    csv_gz(pd.DataFrame(labels, columns=["subject_id", "study_id", *MIMIC_LABELS]), root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    return root


@pytest.mark.slow
def test_readme_walkthrough_runs_as_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    raw = mimic_like(tmp_path / "raw", {"train": 12, "validate": 5, "test": 5})
    commands = walkthrough()
    assert [c[1] for c in commands] == ["prepare", "tokenizer", "fit", "test", "export"]
    for command in commands:
        args = [str(raw) if a.startswith("/data/") else a for a in command[1:]]  # the raw downloads
        main(args + SPEED.get(args[0], []))
        if args[0] == "tokenizer":
            assert (tmp_path / "data/mimic/tokenizer/tokenizer.json").is_file()
    results = sorted(tmp_path.glob("runs/**/results.json"))
    assert results, "test wrote no results.json"
    assert (tmp_path / "exported/my-clip/open_clip_config.json").is_file()
