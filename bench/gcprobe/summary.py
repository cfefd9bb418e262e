"""`python -m bench.gcprobe.summary FILE...`: a worker's collections per generation over its
life, from `bench/gcprobe/sitecustomize.py`'s lines."""

import json
import sys
from pathlib import Path


def summary(path: Path) -> str:
    last = json.loads(path.read_text().splitlines()[-1])
    parts = [f"gen {generation}: {count:,} collections, {cpu / 1e9:.2f} CPU-s, {freed:,} freed"
             for generation, (count, cpu, _wall, freed) in last["gen"].items()]
    total = sum(cpu for _count, cpu, _wall, _freed in last["gen"].values()) / 1e9
    tracked = f"{last['tracked']:,}" if "tracked" in last else "? (no line at exit)"
    return (f"{path.name}: threshold {last['threshold']}, frozen {last['frozen']:,}, "
            f"tracked at exit {tracked}; {'; '.join(parts)}; "
            f"all {total:.2f} CPU-s")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(summary(Path(name)))
