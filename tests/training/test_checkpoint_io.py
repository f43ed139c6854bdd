"""`AtomicCheckpointIO` under fault injection: full disk mid-save, permissions, damaged files."""

from __future__ import annotations

import errno
import os
import stat

import pytest
import torch

from medalign.models.checkpoint import CheckpointError
from medalign.training.checkpoint_io import AtomicCheckpointIO


def _disk_full_after(n_bytes: int):
    def save(obj, handle):
        handle.write(b"\0" * n_bytes)  # a partial file exists when the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device")

    return save


def test_disk_full_mid_save_says_so_keeps_the_previous_file_and_cleans_up(tmp_path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(1)}, target)
    before = target.read_bytes()
    with pytest.raises(OSError, match=r"disk full while saving checkpoint .*last.ckpt.*previous file .* intact") as info:
        AtomicCheckpointIO(save=_disk_full_after(4096)).save_checkpoint({"step": torch.tensor(2)}, target)
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert torch.load(target, weights_only=True)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no .last.ckpt.*.tmp left


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_checkpoints_get_the_users_umask_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        AtomicCheckpointIO().save_checkpoint({"x": torch.zeros(2)}, tmp_path / "a.ckpt")
        (tmp_path / "plain").write_bytes(b"")  # what open() gives under this umask
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.ckpt").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_loading_a_truncated_checkpoint_names_it_as_damaged(tmp_path):
    good = tmp_path / "good.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.randn(64, 64)}}, good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint .*cut.ckpt is damaged"):
        AtomicCheckpointIO().load_checkpoint(cut)
    assert torch.equal(AtomicCheckpointIO().load_checkpoint(good)["state_dict"]["w"], torch.load(good)["state_dict"]["w"])
