"""The fault suite's own judgements: a write-back in a changelog, a stale row presented as
fresh, the worst recovery of a scenario, and the page generated from a results file."""

from pathlib import Path

import orjson
import pytest

from tests.faults.changelogs import written_back
from tests.faults.harness import Row, as_json, worst
from tests.faults.reads import regressions
from tests.faults.report import chart, load, page


def row(version: int) -> bytes:
    return orjson.dumps({"data": {"version": version}, "version": version})


def test_an_older_row_after_a_newer_one_for_the_same_key_is_a_write_back() -> None:
    found = written_back([(0, 10, b"o-1", row(3)), (0, 11, b"o-1", row(4)),
                          (0, 12, b"o-1", row(2))])
    assert found == ["[0] key b'o-1': offset 12 at 2 after offset 11 at 4"]


def test_rows_that_only_move_forward_and_restarts_after_a_deletion_are_not() -> None:
    assert written_back([(0, 1, b"o-1", row(3)), (0, 2, b"o-1", row(3)),
                         (1, 3, b"o-1", row(1)), (0, 4, b"o-1", None),
                         (0, 5, b"o-1", row(1)), (0, 6, b"x", b"not json")]) == []


def test_a_version_below_one_seen_before_is_a_regression() -> None:
    assert regressions({"o-1": 5, "p-1": 2}, {"o-1": 4, "p-1": 3}) == {"o-1": (5, 4)}
    assert regressions({"o-1": 5}, {"o-1": 5, "o-2": 1}) == {}


def test_the_recovery_shown_is_the_worst_of_the_probes_and_the_view_gaps() -> None:
    found = Row("pause", recoveries={"paused": 78.0, "resumed": 3.3},
                unserved={"orders[0]": 0.0, "orders[1]": 12.5})
    assert worst(found) == 78.0
    found.unserved["orders[1]"] = 90.1
    assert worst(found) == 90.1
    assert worst(Row("none")) is None


def results_file(tmp_path: Path, recovery: float, passed: bool) -> Path:
    scenario = Row("kill-9", commands=900, recoveries={"kill": recovery},
                   unserved={"orders[0]": 0.5}, reads=40, stale_reads=3,
                   problems=[] if passed else ["read: orders/o-1 served as fresh"])
    scenario.recovery_seconds = worst(scenario)
    path = tmp_path / f"{recovery}.json"
    path.write_bytes(orjson.dumps({
        "started": "2026-12-02T13:00:00Z", "finished": "2026-12-02T13:02:00Z",
        "commit": "abc1234", "cpus": 2, "load_average": [8.1, 6.0, 4.2],
        "scenarios": [as_json(scenario)]}))
    return path


def test_the_page_is_made_from_the_results_files(tmp_path: Path) -> None:
    def run(recovery: float, passed: bool) -> Path:
        return results_file(tmp_path, recovery, passed)

    text = page([run(4.2, True), run(7.9, True), run(5.0, False)])
    assert "| kill-9 | 900 | 0 | 0 | 0 | 0 | 5.0 | 0.5 | 40 (3, 0) | 0.0 | FAIL |" in text
    assert "| kill-9 | worst recovery | 3 | 4.2 | 5.0 | 7.9 | 4.2, 7.9, 5.0 |" in text
    assert "| kill-9 | longest view gap | 3 | 0.5 | 0.5 | 0.5 | 0.5, 0.5, 0.5 |" in text
    assert "read: orders/o-1 served as fresh" in text


def test_the_chart_is_drawn_from_the_results_files_and_the_page_embeds_it(
    tmp_path: Path,
) -> None:
    pytest.importorskip("matplotlib")  # the bench extra; not installed by CI
    paths = [results_file(tmp_path, seconds, True) for seconds in (4.2, 7.9)]
    drawn = chart([load(path) for path in paths], tmp_path / "img" / "recoveries.png")
    assert drawn is not None and drawn.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "![Worst recovery per scenario" in page(paths, "img/recoveries.png")
    assert "(img/recoveries.png)" in page(paths, "img/recoveries.png")
    assert "![" not in page(paths)


def test_no_chart_when_no_run_timed_a_recovery(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    untimed = {"scenarios": [{"scenario": "poison", "recovery_seconds": None, "passed": True}]}
    assert chart([untimed], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
