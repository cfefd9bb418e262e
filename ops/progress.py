"""Progress of long operator work: a bar with counts, rate and ETA on a terminal, plain
periodic lines when the output is not one (CI logs), nothing with --quiet."""

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY = 5.0


class Reporter:
    """`with Reporter("verify", total) as bar: bar.advance(n)`; `total` may be None."""

    def __init__(self, label: str, total: int | None = None, quiet: bool = False,
                 out: TextIO | None = None, every: float = PLAIN_EVERY) -> None:
        self.label, self.total, self.quiet, self.every = label, total, quiet, every
        self.out = out or sys.stderr
        self.done = 0
        self.started = self.last_line = time.monotonic()
        self.bar: Progress | None = None

    def __enter__(self) -> "Reporter":
        if not self.quiet and self.out.isatty():
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TaskProgressColumn(),
                                TextColumn("{task.speed} /s"), TimeElapsedColumn(),
                                TimeRemainingColumn(), transient=False)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        return self

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.advance(self.task, count)
        elif not self.quiet and time.monotonic() - self.last_line >= self.every:
            self.last_line = time.monotonic()
            self.out.write(self.line() + "\n")
            self.out.flush()

    def set_total(self, total: int) -> None:
        self.total = total
        if self.bar is not None:
            self.bar.update(self.task, total=total)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done:,}"
        if self.total:
            left = (self.total - self.done) / rate if rate else None
            eta = f", ETA {left:.0f} s" if left is not None else ""
            text += f" of {self.total:,} ({100 * self.done / self.total:.0f} %{eta})"
        return f"{text}, {rate:,.0f}/s"

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif not self.quiet:
            self.out.write(self.line() + " (done)\n" if kind is None else self.line() + "\n")
            self.out.flush()
