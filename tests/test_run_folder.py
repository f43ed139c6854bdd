"""`medalign.run_folder`: the run's paths, atomic writes and file hashes."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from medalign.run_folder import RunFolder, atomic_path, file_sha256, new_timestamped_folder, write_text_atomic


def test_layout_paths(tmp_path):
    run = RunFolder(tmp_path)
    assert run.config == tmp_path / "config.yaml"
    assert run.last_checkpoint == tmp_path / "checkpoints" / "last.ckpt"
    assert run.bad_rows() == tmp_path / "bad_rows.csv"
    assert run.bad_rows(rank=2) == tmp_path / "bad_rows.rank2.csv"
    assert run.geometry_plot(7) == tmp_path / "geometry" / "epoch_007.png"
    assert run.new_eval_folder().parent == tmp_path / "eval"


def test_last_checkpoints_and_eval_results_are_found(tmp_path):
    run = RunFolder(tmp_path)
    run.checkpoints.mkdir()
    for name in ("last.ckpt", "last-v1.ckpt", "epoch=0.ckpt"):
        (run.checkpoints / name).write_bytes(b"x")
    assert sorted(p.name for p in run.last_checkpoints()) == ["last-v1.ckpt", "last.ckpt"]
    first, second = run.eval_root / "a", run.eval_root / "b"
    for folder in (first, second):
        folder.mkdir(parents=True)
        (folder / "results.json").write_text("{}")
    os.utime(first / "results.json", (1, 1))  # older
    assert run.eval_results() == [first / "results.json", second / "results.json"]


def test_timestamped_folders_never_collide(tmp_path):
    first = new_timestamped_folder(tmp_path)
    assert re.fullmatch(r"\d{8}-\d{6}", first.name)
    first.mkdir()
    second = new_timestamped_folder(tmp_path)
    assert second != first and second.name.startswith(first.name)


def test_config_of_checkpoint_beside_or_one_folder_up(tmp_path):
    ckpt = RunFolder(tmp_path).last_checkpoint
    ckpt.parent.mkdir()
    assert RunFolder.config_of_checkpoint(ckpt) is None
    (tmp_path / "config.yaml").write_text("a: 1")
    assert RunFolder.config_of_checkpoint(ckpt) == tmp_path / "config.yaml"
    (ckpt.parent / "config.yaml").write_text("a: 2")
    assert RunFolder.config_of_checkpoint(ckpt) == ckpt.parent / "config.yaml"


def test_file_sha256_matches_hashlib_and_sees_changes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_sha256(path, chunk=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
    path.write_bytes(b"different length")
    assert file_sha256(path) == hashlib.sha256(b"different length").hexdigest()


def test_atomic_path_replaces_on_success_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp.suffix == ".csv"  # same folder: rename is atomic
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]  # no temporary left behind
    with atomic_path(target, fsync=True) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible before the rename
    assert target.read_text() == "new"


def test_no_other_module_spells_the_layout_or_hashes_files():
    """One definition each: other modules ask `RunFolder` / `atomic_path` / `file_sha256`."""
    src = Path(__file__).resolve().parents[1] / "src" / "medalign"
    patterns = {
        "checkpoints folder": re.compile(r"""/ ["']checkpoints["']"""),
        "eval folder": re.compile(r"""/ ["']eval["']"""),
        "bad_rows.csv": re.compile(r"""/ ["']bad_rows\.csv["']"""),
        "file hashing": re.compile(r"""hashlib\.sha256\(\)"""),
    }
    found = []
    for path in src.rglob("*.py"):
        if path.name == "run_folder.py":
            continue
        text = path.read_text()
        found += [f"{path.relative_to(src)}: {what}" for what, pattern in patterns.items() if pattern.search(text)]
    allowed = {  # digests of other things than one file's bytes
        "evaluation/encoders.py: file hashing",  # state_dict_hash: tensors
        "evaluation/embeddings.py: file hashing",  # a split's fingerprint: file hashes + paths + mtimes
        "models/hf_clip.py: file hashing",  # a model folder's fingerprint: names + `file_sha256` of each file
    }
    assert set(found) <= allowed, found
