"""`medalign shard` after a kill: the dead run's staging is adopted and resumed; other dead stagings are removed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

import pytest

pytest.importorskip("litdata")

from medalign.data import shard_writer  # noqa: E402
from medalign.data.shard_writer import write_shards  # noqa: E402


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid  # exited and reaped: no such process now


KILLED_RUN = """
import os, signal, sys
from medalign.data import shard_writer
original = shard_writer.shard_item
def item(task, seen=[0]):
    seen[0] += 1
    if seen[0] == {kill_at}:  # SIGKILL the main `medalign shard` process mid-split, then stop this worker
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(1)
    with open({log!r}, "a") as handle:
        handle.write(str(task["row"]) + "\\n")
    return original(task)
shard_writer.shard_item = item
shard_writer.write_shards({manifest!r}, {out!r}, num_workers=1, chunk_bytes="20KB")
"""


def _counting(log_path):
    """A `shard_item` that appends each row it processes to `log_path`."""
    original = shard_writer.shard_item

    def item(task):
        with open(log_path, "a") as handle:
            handle.write(f"{task['row']}\n")
        return original(task)

    return item


def test_a_rerun_after_a_kill_resumes_finished_chunks_and_cleans_dead_stagings(synthetic_dir, tmp_path, monkeypatch):
    manifest, out = synthetic_dir / "manifest.csv", tmp_path / "shards"
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    code = KILLED_RUN.format(kill_at=60, log=str(first), manifest=str(manifest), out=str(out))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(tmp_path / "killed.log", "w") as log:  # files, not pipes: litdata's leftover helpers may hold them
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            returncode = process.wait(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the killed run's litdata workers
    assert returncode == -9, (tmp_path / "killed.log").read_text()[-2000:]
    staged = list(tmp_path.glob(".shards.partial-*"))
    assert len(staged) == 1 and not out.exists()  # the killed run's staging, named by its (dead) pid
    stale = tmp_path / f".shards.partial-{_dead_pid()}"  # another dead run, other settings
    (stale / "train").mkdir(parents=True)
    (stale / "train" / "chunk-0-0.bin").write_bytes(b"\0" * 1000)
    (stale / shard_writer.RESUME_FILE).write_text(json.dumps({"manifest_sha256": "another manifest"}))

    monkeypatch.setattr(shard_writer, "shard_item", _counting(second))
    index = write_shards(manifest, out, num_workers=1, chunk_bytes="20KB")
    done_before = len(first.read_text().split())
    redone = len(second.read_text().split())
    total = sum(s["rows"] for s in index["splits"].values())
    assert done_before == 59 and redone < total - 40, (done_before, redone, total)  # finished chunks were not redone
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".shards")]  # both stagings gone
    rows = [json.loads(line)["row"] for split in index["splits"] for line in (out / split / "rows.jsonl").read_text().splitlines()]
    assert sorted(rows) == list(range(total))


def test_a_live_run_writing_the_same_out_is_refused(synthetic_dir, tmp_path):
    import os

    (tmp_path / f".shards.partial-{os.getppid()}").mkdir()  # our parent: alive
    with pytest.raises(FileExistsError, match=r"another `medalign shard` \(pid \d+\) is writing"):
        write_shards(synthetic_dir / "manifest.csv", tmp_path / "shards")
