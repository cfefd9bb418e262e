"""The profile breakdown counts each sample once, for the first group that names it."""

import pytest

from bench.profile import breakdown

STACKS = """\
run (a.py:1);EpollSelector.select (selectors.py:468) 5
run (a.py:1);_fold_key (agents/projector.py:1);ManagedUserDict.__setitem__ (x:1);Sender.x (y:2) 3
run (a.py:1);parse_event (streams/envelopes.py:116) 2
not a stack line
"""


def test_each_sample_counts_for_its_first_group() -> None:
    shares = dict(breakdown(STACKS))
    assert shares == {
        "idle: waiting in select": pytest.approx(0.5),
        "table reads and writes (RocksDB, changelog record)": pytest.approx(0.3),
        "parsing events (pydantic)": pytest.approx(0.2),
    }


def test_an_empty_profile_has_no_groups() -> None:
    assert breakdown("") == []
