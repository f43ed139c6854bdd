"""`check_out` / `put_in_place`: `export --force` never deletes a file export did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalign.cli import command
from medalign.export.folder import MARKER_FILE, check_out, mark_written, put_in_place, staged


def _sandbox(root: Path) -> dict[Path, str]:
    """A folder tree of user files; returns path → content."""
    files = {root / "notes.txt": "keep", root / "work" / "data.csv": "a,b", root / "work" / "sub" / "x.txt": "x"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def _survive(files: dict[Path, str]) -> None:
    for path, text in files.items():
        assert path.read_text() == text, path


@pytest.mark.parametrize("out", [".", "sub/..", "..", "work/sub/../.."])
def test_force_refuses_the_working_directory_and_its_parents(tmp_path, monkeypatch, out):
    files = _sandbox(tmp_path)
    monkeypatch.chdir(tmp_path / "work")
    (tmp_path / "work" / "ckpt.ckpt").write_bytes(b"not read")
    files[tmp_path / "work" / "ckpt.ckpt"] = "not read"
    with pytest.raises(ValueError, match=r"--out .* is (the working directory|a parent)"):
        command("export")(["--ckpt", "ckpt.ckpt", "--out", out, "--force"])
    _survive(files)


def test_force_refuses_the_home_folder(tmp_path, monkeypatch):
    files = _sandbox(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "work"))
    monkeypatch.chdir(tmp_path / "work" / "sub")
    (tmp_path / "c.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match="is the home folder"):
        command("export")(["--ckpt", str(tmp_path / "c.ckpt"), "--out", str(tmp_path / "work"), "--force"])
    with pytest.raises(ValueError, match="is a parent of the working directory or home folder"):
        check_out(tmp_path, force=True)
    _survive(files)


def test_force_refuses_folders_with_files_export_did_not_write(tmp_path, monkeypatch):
    files = _sandbox(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (tmp_path / "c.ckpt").write_bytes(b"x")
    with pytest.raises(ValueError, match="holds files it did not write"):  # no marker at all
        command("export")(["--ckpt", str(tmp_path / "c.ckpt"), "--out", str(tmp_path / "work"), "--force"])
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "open_clip_config.json").write_text("{}")
    mark_written(exported)
    (exported / "mine.txt").write_text("user's")  # added after the export
    files[exported / "mine.txt"] = "user's"
    with pytest.raises(ValueError, match=r"holds files it did not write \(1, e.g. \['mine.txt'\]\)"):
        command("export")(["--ckpt", str(tmp_path / "c.ckpt"), "--out", str(exported), "--force"])
    _survive(files)


def test_put_in_place_replaces_only_an_exported_folder_by_rename(tmp_path):
    out = tmp_path / "model"
    for content in ("first", "second"):
        check_out(out, force=True)
        stage = staged(out)
        stage.mkdir()
        (stage / "open_clip_config.json").write_text(content)
        put_in_place(stage, out)
        assert (out / "open_clip_config.json").read_text() == content and (out / MARKER_FILE).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or old folder left


def test_export_of_a_truncated_checkpoint_names_its_path(tmp_path):
    import torch

    from medalign.models.checkpoint import CheckpointError

    full = tmp_path / "full.ckpt"
    torch.save({"state_dict": {"w": torch.ones(64, 64)}, "hyper_parameters": {"preset": "tiny"}}, full)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint .*cut.ckpt is damaged"):
        command("export")(["--ckpt", str(cut), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
