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


HANG_WINDOW = 10  # seconds after the script's last line: the reaper's exit takes its 2 s grace, a hang is forever


def test_bare_ignore_sigterm_is_what_hangs():
    """The control: without the reaper the same script never exits (so the test above can fail).

    Timed from the script's last line, not from its start: a slow torch import under load must not
    pass for a hang, and the wait for a hang that started need not include the import.
    """
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(name="ignore_sigterm", call="ignore_sigterm")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    watchdog = threading.Timer(600, proc.kill)  # a script that never prints must not hang the test
    watchdog.start()
    try:
        line = proc.stdout.readline()
        assert line == "batch [0, 1, 2, 3]\n", line + proc.stderr.read()
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=HANG_WINDOW)
    finally:
        watchdog.cancel()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the script and its two workers
        proc.communicate()


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
