"""A probe of Python's garbage collector in a worker under the bench: per generation, the
collections, their CPU and wall time and the objects they freed, as JSON lines.

`PYTHONPATH=bench/gcprobe python -m bench ... --set GCPROBE=/tmp/gc.jsonl`: every Python process
of the run loads this file, and only d's worker (the one given `SHOPSTREAM_GCPROBE`) records,
a line every 2 s of collections and one at exit with the objects still tracked.
`python -m bench.gcprobe.summary /tmp/gc.jsonl` sums it up.
"""

import atexit
import gc
import json
import os
import time
from typing import Any

PATH = os.environ.get("SHOPSTREAM_GCPROBE")
totals = {generation: [0, 0, 0, 0] for generation in range(3)}  # count, CPU ns, wall ns, freed
started = {"cpu": 0, "wall": 0, "written": 0.0}


def write(final: bool = False) -> None:
    line: dict[str, Any] = {"at": time.time(), "final": final, "gen": totals,
                            "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    if final:
        line["tracked"] = len(gc.get_objects())
    with open(str(PATH), "a") as output:
        output.write(json.dumps(line) + "\n")


def timed(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        started["cpu"], started["wall"] = time.thread_time_ns(), time.perf_counter_ns()
        return
    total = totals[info["generation"]]
    total[0] += 1
    total[1] += time.thread_time_ns() - started["cpu"]
    total[2] += time.perf_counter_ns() - started["wall"]
    total[3] += info["collected"]
    if time.monotonic() - started["written"] > 2:
        started["written"] = time.monotonic()
        write()


if PATH:
    gc.callbacks.append(timed)
    atexit.register(write, True)
