"""A projection's progress: every record that touched a view is observed, the last per
partition is how far it got."""

from tables.progress import Progress


def test_a_batch_reports_every_touching_record_and_advances_to_its_last() -> None:
    progress = Progress()
    seen: list[tuple[str, list[float]]] = []
    progress.listeners.append(lambda *args: seen.append(args))
    progress.folded_batch("orders", [(0, 10, 1.0, True), (1, 5, 2.0, True),
                                     (0, 11, 3.0, False), (0, 12, 4.0, True)])
    assert seen == [("orders", [1.0, 2.0, 4.0])]
    assert progress.applied == {("orders", 0): 12, ("orders", 1): 5}
    assert progress.event_time[("orders", 0)] == 4.0


def test_a_batch_that_touched_nothing_tells_no_listener_and_still_advances() -> None:
    progress = Progress()
    seen: list[tuple[str, list[float]]] = []
    progress.listeners.append(lambda *args: seen.append(args))
    progress.folded_batch("orders", [(0, 10, 1.0, False)])
    assert seen == []
    assert progress.applied == {("orders", 0): 10}
