"""The worker's garbage-collector policy: the thresholds and the freeze take effect, and the
settings that choose them parse."""

import gc
from collections.abc import Iterator

import pytest

from streams import collector
from streams.settings import Settings, gc_thresholds


@pytest.fixture(autouse=True)
def pythons_own_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_thresholds_are_set_and_none_keeps_pythons() -> None:
    collector.set_thresholds((200_000, 10, 10))
    assert gc.get_threshold() == (200_000, 10, 10)
    collector.set_thresholds(None)
    assert gc.get_threshold() == (200_000, 10, 10)


def test_the_freeze_moves_what_lives_now_out_of_the_collectors_sight() -> None:
    gc.unfreeze()
    alive = [[index] for index in range(1000)]
    collector.freeze_start_up()
    assert gc.get_freeze_count() >= len(alive)
    seen = {id(thing) for generation in range(3) for thing in gc.get_objects(generation)}
    assert not seen & {id(row) for row in alive}


def test_threshold_settings() -> None:
    assert gc_thresholds("python") is None
    assert gc_thresholds("50000") == (50_000, 10, 10)
    assert gc_thresholds("50000,20,100") == (50_000, 20, 100)
    for wrong in ("0", "1,2", "a", "1,2,3,4"):
        with pytest.raises(ValueError):
            gc_thresholds(wrong)


def test_the_policy_is_on_by_default_and_can_be_turned_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPSTREAM_GC_FREEZE", raising=False)
    monkeypatch.delenv("SHOPSTREAM_GC_THRESHOLD", raising=False)
    settings = Settings.from_env()
    assert settings.gc_freeze and settings.gc_threshold == (200_000, 10, 10)
    monkeypatch.setenv("SHOPSTREAM_GC_FREEZE", "off")
    monkeypatch.setenv("SHOPSTREAM_GC_THRESHOLD", "python")
    settings = Settings.from_env()
    assert not settings.gc_freeze and settings.gc_threshold is None
