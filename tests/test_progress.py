"""Progress on long work: counts reach their totals; log lines (no terminal) carry the count, elapsed time and ETA."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medalign import progress as progress_module
from medalign.progress import Progress, format_seconds, track


@pytest.fixture()
def bars(monkeypatch):
    """Every `Progress` created while the test runs."""
    made: list[Progress] = []
    init = Progress.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Progress, "__init__", record)
    return made


def test_callback_reaches_the_total_and_the_last_log_line_says_so(caplog):
    calls = []
    with caplog.at_level(logging.INFO, logger="medalign.progress"):
        items = list(track(range(7), desc="work", callback=lambda done, total: calls.append((done, total)), unit="step"))
    assert items == list(range(7)) and calls[-1] == (7, 7) and [d for d, _ in calls] == list(range(1, 8))
    assert any("work: 7/7 step" in r.getMessage() and "elapsed" in r.getMessage() for r in caplog.records)  # pytest: no TTY


def test_quiet_means_no_lines_and_eta_follows_the_rate(caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="medalign.progress"):
        list(track(range(3), desc="quiet", enabled=False))
    assert not caplog.records
    clock = iter([0.0, 10.0, 10.0])  # start, then two reads after 2 of 10 units: 5 s per unit → 40 s left
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    bar = Progress(10, "x", enabled=False)
    assert bar.eta() is None
    bar.done = 2
    assert bar.eta() == pytest.approx(40.0)
    assert format_seconds(40) == "40 s" and format_seconds(185) == "3 min 05 s" and format_seconds(7620) == "2 h 07 min"


@pytest.mark.parametrize("sequential, epochs, patience", [(False, 4, 10), (True, 4, 10), (False, 200, 1)])
def test_gap_sweep_reports_every_block_to_its_end(bars, sequential, epochs, patience, caplog):
    from medalign.studies.gap.probe_config import ProbeConfig
    from medalign.studies.gap.sweep import run_gap_sweep

    rng = np.random.default_rng(0)

    def split(n):
        v, t = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in rng.normal(size=(2, n, 8)).astype(np.float32))
        return v, t, (rng.random((n, 2)) < 0.4).astype(np.float32)

    with caplog.at_level(logging.INFO):
        run_gap_sweep(split(60), split(20), split(30), [0.0, 0.5, 1.0], [42, 43], label_names=["a", "b"],
                      config=ProbeConfig(max_epochs=epochs, patience=patience), sequential=sequential, learnable_lambda=True)
    probes = [b for b in bars if b.desc.startswith("gap sweep")]
    assert len(probes) == 4  # early fusion, image-only and text-only references, learnable λ
    assert all(b.total and b.done == b.total for b in probes), [(b.desc, b.done, b.total) for b in probes]
    assert probes[0].total == (6 if sequential else epochs)  # probes one at a time, or epochs of the batched block
    assert any("early-fusion probes done" in r.getMessage() and "0.5:" in r.getMessage() for r in caplog.records)


def test_linear_probe_sweep_counts_its_fractions(bars):
    from medalign.evaluation.tasks.linear_probe import fraction_sweep

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 4)), (rng.random((80, 2)) < 0.5).astype(float)
    fraction_sweep(x, y, x, y, ["a", "b"], fractions=[0.5, 1.0])
    (bar,) = [b for b in bars if b.desc.startswith("linear probes")]
    assert bar.done == bar.total == 2


def test_benchmark_grid_logs_each_cell_and_reaches_the_total(tmp_path, caplog):
    from medalign.benchmark import expand_grid, load_benchmark_config, run_grid
    from tests.benchmark.test_benchmark import _fake_launcher, _study

    cells = expand_grid(load_benchmark_config(_study(tmp_path)))
    calls = []
    with caplog.at_level(logging.INFO, logger="medalign"):
        run_grid(cells[:3], _fake_launcher(), callback=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (3, 3)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("benchmark: cell")]
    assert len(lines) == 6 and "cell 1/3" in lines[0] and "started" in lines[0] and "log.txt" in lines[0]
    assert "ETA" in lines[2] and " in " in lines[1]  # the second start knows the rate; each end its time
