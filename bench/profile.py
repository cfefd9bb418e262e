"""Where a profiled worker's samples went: py-spy's collapsed stacks, grouped by what they do.

`python -m bench.profile <workdir>/d-profile.txt`. A sample counts for the first group, in
the order below, one of whose markers appears in its stack.
"""

import sys
from collections import Counter
from pathlib import Path

GROUPS = [
    ("idle: waiting in select", ("EpollSelector.select",)),
    ("start-up and shut-down (RocksDB open/close, recovery)",
     ("RocksDBOptions.open", "Store.stop", "Recovery", "revoke_partitions", "on_first_start")),
    ("parsing events (pydantic)", ("parse_event", "model_validate")),
    ("table reads and writes (RocksDB, changelog record)",
     ("ManagedUserDict", "Store._set", "Store._get", "Store._contains", "on_key_set",
      "_on_changelog_sent", "set_persisted_offset")),
    ("producing (changelogs, repartitions: aiokafka sender)",
     ("Sender.", "ProducerBuffer", "publish_message", "Producer.send")),
    ("the pure fold (apply, project)", ("apply (tables/view.py", "project (tables/")),
    ("consuming: fetch, conductor, stream", ("Fetcher.", "_drain_messages", "Conductor.",
                                              "Stream.", "take_events", "on_message")),
    ("committing offsets", ("commit",)),
    ("HTTP (the check's reads)", ("aiohttp", "RequestHandler")),
    ("event loop: callbacks, futures, wake-ups", ("Handle._run",)),
]


def breakdown(collapsed: str) -> list[tuple[str, float]]:
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        group = next((name for name, markers in GROUPS
                      if any(marker in stack for marker in markers)), "other")
        counts[group] += int(samples)
    total = sum(counts.values()) or 1
    return [(name, count / total) for name, count in counts.most_common()]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: python -m bench.profile <py-spy raw output>", file=sys.stderr)
        return 2
    for name, share in breakdown(Path(argv[0]).read_text()):
        print(f"{share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
