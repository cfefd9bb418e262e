"""The worker's handle on a view version's build running in an OS process of its own.

While a version is far behind the log's end on the partitions a worker owns, the fold runs
in a child process at a low CPU priority (`agents.build_apart`), so that the kernel serves
the worker's reads first. The child runs the worker's own program (`python -m <the
worker's module> build-apart <view> <version> <partitions>`), so it knows the same views.
It lives while its stdin is open: closing it stops the child at once, and so does the
worker's death, even by SIGKILL. It says what it folded on its stdout, one JSON line a batch.
"""

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import orjson

from tables.view import View

log = logging.getLogger(__name__)
NICE = 10  # the worker runs at 0: the build gets the CPU the worker leaves
STOP_WAIT = 5.0
HANDED_BACK = 0  # the child's exit code when its partitions are near the log's end


def program() -> list[str]:
    """The command line that runs the worker's own CLI (`python -m <module>`)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    module = spec.name.removesuffix(".__main__") if spec is not None else "streams"
    return [sys.executable, "-m", module]


class BuildProcess:
    """One child folding `partitions` of `view`; `on_batch` gets each batch it reports."""

    def __init__(self, process: asyncio.subprocess.Process, partitions: set[int],
                 on_batch: Callable[[dict[str, Any]], None]) -> None:
        self.process = process
        self.partitions = partitions
        self.reading = asyncio.create_task(self._read(on_batch))

    @classmethod
    async def start(cls, view: View, partitions: set[int],
                    on_batch: Callable[[dict[str, Any]], None]) -> "BuildProcess":
        process = await asyncio.create_subprocess_exec(
            *program(), "build-apart", view.name, str(view.version),
            ",".join(map(str, sorted(partitions))),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        with suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, process.pid, NICE)
        log.info("building %s on partitions %s in process %s", view.table_name,
                 sorted(partitions), process.pid)
        return cls(process, partitions, on_batch)

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def _read(self, on_batch: Callable[[dict[str, Any]], None]) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            try:
                batch = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # not a report: something printed on the child's stdout
            if isinstance(batch, dict):
                on_batch(batch)
        await self.process.wait()

    async def stop(self) -> int:
        """Stop the child if it still runs (it exits as soon as its stdin closes); its exit
        code. Its store is closed once this returns."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            async with asyncio.timeout(STOP_WAIT):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        await self.reading
        assert self.process.returncode is not None
        return self.process.returncode
