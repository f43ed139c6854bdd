"""`confine_paths`: every command refuses manifest paths outside the manifest's folder, with one flag to allow them."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PIL import Image

from medalign.data.manifest import ManifestError, confine_paths, read_manifest

OUTSIDE = r"row 1 \(line 3\), image path '(\.\./outside\.png|/etc/passwd)' is outside the manifest's folder"


@pytest.fixture
def leaky(tmp_path):
    """data/m.csv whose row 1 reads ../outside.png (a file that exists)."""
    data = tmp_path / "data"
    data.mkdir()
    image = (np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint8)
    for path in (data / "a.png", tmp_path / "outside.png"):
        Image.fromarray(image).save(path)
    np.save(data / "a_gaze.npy", np.ones((64, 64), np.float32))
    (data / "m.csv").write_text("id,image,text,split,heatmap,Edema\na,a.png,effusion,test,a_gaze.npy,1\n"
                                "b,../outside.png,no finding,test,a_gaze.npy,0\n")
    return data / "m.csv"


def test_read_manifest_confines_by_default_and_the_flag_allows(leaky, tmp_path):
    with pytest.raises(ManifestError, match=OUTSIDE + r".*--data.allow_outside_paths true .*--allow-outside-paths"):
        read_manifest(leaky)
    assert len(read_manifest(leaky, allow_outside_paths=True)) == 2
    absolute = leaky.with_name("abs.csv")
    absolute.write_text("id,image,text,split\na,a.png,x,test\nb,/etc/passwd,y,test\n")
    with pytest.raises(ManifestError, match=OUTSIDE):
        read_manifest(absolute, check_files=False)


def test_test_geometry_and_gap_sweep_embeddings_refuse_outside_paths(leaky):
    from medalign.evaluation.embeddings import get_embeddings

    with pytest.raises(ManifestError, match=OUTSIDE):  # before any encoding: the encoder is never touched
        get_embeddings(None, leaky, "test", ["Edema"])


def test_gap_sweep_refuses_outside_paths_before_embedding(leaky):
    from medalign.commands.gap_sweep import GapSweepConfig, _splits

    with pytest.raises(ManifestError, match=OUTSIDE):
        _splits(GapSweepConfig(manifest=str(leaky), label_columns=["Edema"]), None, "zeros")


def test_resize_refuses_rather_than_copies_outside_files(leaky, tmp_path):
    from medalign.commands.resize import resize_manifest

    with pytest.raises(ManifestError, match=OUTSIDE):
        resize_manifest(leaky, tmp_path / "small", 32, progress=False)
    assert not (tmp_path / "small").exists()
    written = resize_manifest(leaky, tmp_path / "small", 32, progress=False, allow_outside_paths=True)  # the flag
    assert len(read_manifest(written, allow_outside_paths=True)) == 2


def test_shard_refuses_outside_paths_by_default(leaky, tmp_path):
    pytest.importorskip("litdata")
    from medalign.data.shard_writer import write_shards

    with pytest.raises(ManifestError, match=OUTSIDE):
        write_shards(leaky, tmp_path / "shards", label_columns=["Edema"])


def test_saliency_refuses_outside_paths(leaky):
    from medalign.evaluation.tasks.saliency import saliency_agreement

    encoder = types.SimpleNamespace(model=types.SimpleNamespace(image_projection=None))
    with pytest.raises(ManifestError, match=OUTSIDE):
        saliency_agreement(encoder, leaky, "test")


@pytest.mark.parametrize("command", ["resize", "shard", "saliency", "geometry"])
def test_every_argparse_command_has_the_one_flag(command):
    import importlib

    module = importlib.import_module(f"medalign.commands.{command}")
    parser = module.build_parser() if hasattr(module, "build_parser") else module._parser()
    actions = {a.dest: a for a in parser._actions}
    assert {"--allow-outside-paths", "--allow_outside_paths"} <= set(actions["allow_outside_paths"].option_strings)
    assert actions["allow_outside_paths"].default is False


def test_confine_paths_accepts_inside_paths_and_dotdot_that_stays_inside(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"image": ["a.png", "sub/../b.png"], "heatmap": ["", "h/x.npy"]})
    confine_paths(tmp_path / "m.csv", frame)  # no error
