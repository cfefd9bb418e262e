"""The rooms stand on floors: no module imports one from a higher floor, and the pure domain
imports nothing of Faust or Kafka."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {"streams": 0, "domain": 1, "tables": 2, "agents": 3, "web": 4, "ops": 5}
IO = ("faust", "aiokafka", "mode", "rocksdict", "aiohttp")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def modules() -> list[Path]:
    return sorted(p for room in FLOORS for p in (ROOT / room).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up_a_floor(path: Path) -> None:
    floor = FLOORS[path.relative_to(ROOT).parts[0]]
    above = sorted(name for name in imported(path)
                   if FLOORS.get(name.split(".")[0], -1) > floor)
    assert above == []


@pytest.mark.parametrize("path", sorted((ROOT / "domain").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_domain_does_no_io(path: Path) -> None:
    io = sorted(name for name in imported(path) if name.split(".")[0] in IO)
    assert io == []
