"""`prepare` output trains as written: its in-place image paths are trusted, a moved copy is not."""

from __future__ import annotations

import json
import shutil

import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import ManifestError, read_manifest, trusted_roots
from medalign.training.datamodule import MedAlignDataModule
from tests.prepare import fixtures


def test_prepared_manifest_reads_with_the_default_path_rule(tmp_path, tokenizer):
    root = fixtures.mimic(tmp_path / "mimic-cxr-jpg")
    path = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "data" / "mimic")])  # as the README prints it
    assert read_manifest(path).frame["image"].str.startswith("../../mimic-cxr-jpg/").all()  # default: confined
    assert trusted_roots(path) == [str(root)]
    assert json.loads((path.parent / "prepare_report.json").read_text())["source_roots"] == [str(root)]
    data = MedAlignDataModule(manifest=str(path), tokenizer=str(tokenizer.name_or_path), image_size=32, batch_size=2)
    data.setup("fit")  # what `fit` does first: no --data.allow_outside_paths needed
    assert len(data.manifest) == 3


def test_a_moved_manifest_folder_is_confined_again(tmp_path):
    root = fixtures.mimic(tmp_path / "raw" / "mimic-cxr-jpg")
    path = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "raw" / "out")])
    moved = tmp_path / "elsewhere" / "deeper" / "out"
    shutil.copytree(path.parent, moved)  # its ../ paths now lead to another folder than prepare recorded
    with pytest.raises(ManifestError, match="outside the manifest's folder"):
        read_manifest(moved / "manifest.csv", check_files=False)


def test_a_hand_written_report_cannot_trust_the_filesystem_root(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "manifest.csv").write_text("image,text,split\n../../../../etc/passwd,a report,train\n")
    (folder / "prepare_report.json").write_text(json.dumps({"source_roots": ["relative/dir", "/"]}))
    assert trusted_roots(folder / "manifest.csv") == []
    with pytest.raises(ManifestError, match="outside"):
        read_manifest(folder / "manifest.csv", check_files=False)
