"""One flag style: `gap-sweep --ckpt` (old `--checkpoint` warns), hyphens accepted for jsonargparse flags."""

from __future__ import annotations

import pytest

from medalign.commands.flags import rename_deprecated, underscore_flags
from medalign.commands.gap_sweep import _parse


def test_gap_sweep_takes_ckpt_and_hyphenated_flags():
    cfg = _parse(["--ckpt", "a.ckpt", "--label-columns", "[A, B]", "--probe.max-epochs", "7", "--output-dir=x"])
    assert (cfg.ckpt, cfg.label_columns, cfg.probe.max_epochs, cfg.output_dir) == ("a.ckpt", ["A", "B"], 7, "x")


def test_old_checkpoint_flag_still_works_but_warns_and_is_hidden(capsys):
    with pytest.warns(FutureWarning, match="--checkpoint is deprecated.*--ckpt"):
        cfg = _parse(["--checkpoint=b.ckpt"])
    assert cfg.ckpt == "b.ckpt"
    with pytest.raises(SystemExit):
        _parse(["-h"])
    shown = capsys.readouterr().out
    assert "--ckpt" in shown and "--checkpoint " not in shown and "--checkpoint\n" not in shown


def test_rewriters_leave_values_alone():
    assert underscore_flags(["--a-b", "-1", "x-y", "--c=d-e"]) == ["--a_b", "-1", "x-y", "--c=d-e"]
    with pytest.warns(FutureWarning):
        assert rename_deprecated(["--old", "v", "--keep"], {"--old": "--new"}, "p") == ["--new", "v", "--keep"]
