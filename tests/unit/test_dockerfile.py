"""The image carries every room of the service: a room left out fails at import in Docker only."""

from pathlib import Path

from tests.unit.test_floors import FLOORS, ROOT


def test_the_dockerfile_copies_every_room() -> None:
    copied = {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")}
    assert set(FLOORS) <= copied
    assert all((ROOT / room / "__init__.py").exists() for room in FLOORS)
    assert Path(ROOT / "streams" / "__main__.py").exists()
