"""Progress on long work: a tqdm bar with an ETA on stderr, or log lines where there is no terminal.

Every step that can take more than ~10 s (encoding, probes, the gap sweep, benchmark cells,
saliency, sharding) reports through `progress`: on a terminal a tqdm bar (elapsed, rate, ETA) on
stderr; otherwise (SLURM logs, pipes) a log line at most every `log_every` seconds with done/total,
elapsed and ETA. ``enabled=False`` (the commands' quiet flags, ``evaluation.progress false``) or
``MEDALIGN_PROGRESS=0`` silences both; ``callback(done, total)`` is called on every update.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("medalign.progress")


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Progress:
    """Counts `done` of `total` units; see the module docstring for where it is shown.

    Args:
        total: units of work (None: unknown, no ETA).
        desc: what is being done (``"gap sweep probes"``).
        enabled: False silences bar and log lines; None/True: bar on a terminal, log lines otherwise.
        callback: called with (done, total) after every update.
        log_every: seconds between log lines without a terminal (the last one is always written).
        unit: the unit's name in the bar and the lines.
    """

    def __init__(self, total: int | None, desc: str, enabled: bool | None = None,
                 callback: Callable[[int, int | None], None] | None = None, log_every: float = 30.0,
                 unit: str = "it") -> None:
        self.total, self.desc, self.callback, self.log_every, self.unit = total, desc, callback, log_every, unit
        self.done, self.started = 0, time.perf_counter()
        quiet = enabled is False or os.environ.get("MEDALIGN_PROGRESS", "1") == "0"
        tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.bar = None
        self.lines = not quiet and not tty
        self._last_line = 0.0
        if not quiet and tty:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before the first unit or without a total)."""
        if not self.total or not self.done:
            return None
        return self.elapsed / self.done * (self.total - self.done)

    def status(self) -> str:
        """``desc: 3/11 probes, 12 s elapsed, ETA 32 s``."""
        eta = self.eta()
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        return (f"{self.desc}: {count} {self.unit}, {format_seconds(self.elapsed)} elapsed"
                + (f", ETA {format_seconds(eta)}" if eta is not None and self.done < (self.total or 0) else ""))

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.lines and (self.elapsed - self._last_line >= self.log_every or self.done == self.total):
            self._last_line = self.elapsed
            log.info(self.status())
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(iterable: Iterable[T], total: int | None = None, desc: str = "", enabled: bool | None = None,
          callback: Callable[[int, int | None], None] | None = None, unit: str = "it") -> Iterator[T]:
    """`iterable`, reporting one unit per item through a `Progress`."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, desc, enabled, callback, unit=unit) as progress:
        for item in iterable:
            yield item
            progress.update()
