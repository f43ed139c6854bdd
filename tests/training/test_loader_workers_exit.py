"""A process whose DataLoader workers ignore SIGTERM still exits when an iterator outlives its run.

multiprocessing's exit hook stops live daemonic workers with SIGTERM and joins them; workers that
ignore SIGTERM (pre-emption safety) made that join wait forever — CI saw the test process print
its summary and never end. `loader_worker_init` registers a reaper that runs first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch.utils.data import DataLoader
    from medalign.training.checkpointing import {name}

    init = {call}
    loader = DataLoader(list(range(64)), batch_size=4, num_workers=2, persistent_workers=True, worker_init_fn=init)
    KEPT = iter(loader)        # a live iterator at exit, as a crashed run or a test's traceback keeps it
    print("batch", next(KEPT).tolist(), flush=True)
    """
)


def run_script(name: str, call: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(name=name, call=call)],
                          capture_output=True, text=True, timeout=timeout)


def test_process_with_live_sigterm_ignoring_workers_exits():
    done = run_script("loader_worker_init", "loader_worker_init()", timeout=600)  # a hang detector, not a speed bound (torch imports slowly under load)
    assert done.returncode == 0, done.stderr
    assert "batch [0, 1, 2, 3]" in done.stdout


HOOK_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, time
    from torch.utils.data import DataLoader
    from medalign.training.checkpointing import end_daemonic_children, loader_worker_init

    other = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,), daemon=True)
    other.start()
    loader = DataLoader(list(range(16)), batch_size=4, num_workers=2, persistent_workers=True,
                        worker_init_fn=loader_worker_init())
    kept = iter(loader)
    next(kept), next(kept)                                       # one batch from each worker: both have run their init
    print("killed", end_daemonic_children(grace=1.0))          # the two workers ignore SIGTERM
    print("other", other.is_alive(), other.exitcode)            # the plain child took SIGTERM, as before
    print("again", end_daemonic_children(grace=1.0))
    """
)


def test_exit_hook_kills_workers_that_ignore_sigterm_and_terminates_the_rest():
    done = subprocess.run([sys.executable, "-c", HOOK_SCRIPT], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == ["killed 2", "other False -15", "again 0"], done.stdout + done.stderr


HANG_WINDOW = 10  # seconds after the script's last line: the reaper's exit takes its 2 s grace, a hang is forever


class _Started:
    """The control script, started when this module's first test starts; the time its last line came."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(name="ignore_sigterm", call="ignore_sigterm")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.line, self.printed_at = "", 0.0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        self.line = self.proc.stdout.readline()
        self.printed_at = time.monotonic()

    def stop(self) -> str:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the script and its two workers
        return self.proc.communicate()[1]


@pytest.fixture(scope="module", autouse=True)
def bare_control():
    """Runs beside the other tests: its wait for a hang overlaps them instead of following them."""
    started = _Started()
    yield started
    started.stop()


def test_bare_ignore_sigterm_is_what_hangs(bare_control):
    """The control: without the reaper the same script never exits (so the tests above can fail).

    Timed from the script's last line, not from its start: a slow torch import under load must not
    pass for a hang, and the wait for a hang that started need not include the import.
    """
    bare_control.reader.join(timeout=600)  # a script that never prints must not hang the test
    assert bare_control.line == "batch [0, 1, 2, 3]\n", bare_control.line + bare_control.stop()
    waited = time.monotonic() - bare_control.printed_at
    with pytest.raises(subprocess.TimeoutExpired):  # still alive HANG_WINDOW seconds after its last line
        bare_control.proc.wait(timeout=max(HANG_WINDOW - waited, 0.0))
