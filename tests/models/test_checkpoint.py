"""`load_checkpoint_file` and `load_weights`: damaged, empty, remote and mismatched files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medalign.models.checkpoint import CheckpointError, load_checkpoint_file
from medalign.models.weights import load_weights


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)


def _save(obj, path):
    torch.save(obj, path)
    return path


def test_empty_file_is_named_and_called_damaged(tmp_path):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.ckpt is damaged: it is empty \(0 bytes\)"):
        load_checkpoint_file(tmp_path / "empty.ckpt")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_file_is_named_and_called_damaged(tmp_path, keep):
    good = _save({"state_dict": Net().state_dict(), "hyper_parameters": {"lr": 1e-3}}, tmp_path / "good.ckpt")
    data = good.read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"cut.ckpt is damaged"):
        load_checkpoint_file(cut)


@pytest.mark.parametrize("url", ["https://example.org/model.ckpt", "http://10.0.0.1/x.pt", "s3://bucket/x.ckpt"])
def test_remote_paths_are_refused_before_any_download(url):
    with pytest.raises(CheckpointError, match="remote checkpoint .* local files only"):
        load_checkpoint_file(url)


def test_pickled_objects_are_not_executed(tmp_path):
    path = _save({"state_dict": {}, "obj": Net()}, tmp_path / "pickled.ckpt")  # a whole module, not weights
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint_file(path)


@pytest.mark.parametrize("prefix", ["", "model.", "module.", "module.model."])
def test_wrapper_prefixes_are_stripped(tmp_path, prefix):
    src = Net()
    path = _save({"state_dict": {prefix + k: v for k, v in src.state_dict().items()}}, tmp_path / "w.ckpt")
    dst = Net()
    assert load_weights(dst, path) == ([], [])
    assert all(torch.equal(dst.state_dict()[k], v) for k, v in src.state_dict().items())


def test_init_from_matching_no_tensors_fails_with_a_key_report(tmp_path):
    other = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # keys 0.weight ... : none are a.* / b.*
    path = _save(other.state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"match 0 of the model's 4 tensors .*File keys look like \['0.bias'"):
        load_weights(Net(), path)


def test_init_from_matching_a_few_tensors_fails(tmp_path):
    partial = {"a.weight": torch.zeros(4, 3), "c.weight": torch.zeros(1)}  # 1 of 4 model tensors
    with pytest.raises(ValueError, match=r"match 1 of the model's 4 tensors"):
        load_weights(Net(), _save(partial, tmp_path / "few.pt"))
    load_weights(Net(), tmp_path / "few.pt", min_match=0.25)  # allowed when asked for
