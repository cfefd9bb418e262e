"""The worker's handle on a build process: the child runs at a low priority, its reports
reach the builder (anything else it prints is skipped), and it exits as soon as its stdin
closes, which is also what a worker's death does."""

import asyncio
import os
import sys
from typing import Any

import pytest

from agents import build_process
from tables.orders import VIEW_V2

CHILD = """
import time
import threading
from agents.build_apart import _exit_when_stdin_closes

print("not a report", flush=True)
print('{"partition": 1, "offset": 41, "at": 1.5, "records": 42, "unfoldable": 0}', flush=True)
threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
time.sleep(600)
"""


async def test_a_child_reports_runs_niced_and_exits_when_its_stdin_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(build_process, "program", lambda: [sys.executable, "-c", CHILD])
    batches: list[dict[str, Any]] = []
    reported = asyncio.Event()

    def on_batch(batch: dict[str, Any]) -> None:
        batches.append(batch)
        reported.set()

    child = await build_process.BuildProcess.start(VIEW_V2, {1, 3}, on_batch)
    await asyncio.wait_for(reported.wait(), 60)
    assert child.running
    assert os.getpriority(os.PRIO_PROCESS, child.process.pid) == build_process.NICE
    assert await child.stop() == 1  # its own exit on EOF, not the kill after STOP_WAIT
    assert batches == [{"partition": 1, "offset": 41, "at": 1.5, "records": 42,
                        "unfoldable": 0}]
    assert child.partitions == {1, 3}
