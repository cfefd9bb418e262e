"""The ledger of dead letters: which still wait, whatever order letters and markers come in."""

from uuid import uuid4

from streams.dead_letters import Ledger, Resolution, dead_letter
from streams.envelopes import encode, utc_now


def test_a_letter_waits_until_it_is_replayed_or_discarded_in_either_order() -> None:
    first = dead_letter("p.commands", 0, 1, b"k", b"\xff", "unreadable")
    second = dead_letter("p.events", 3, 9, None, b"{}", "unfoldable")
    ledger = Ledger()
    ledger.observe(encode(Resolution(resolved=second.dead_letter_id, how="discarded",
                                     resolved_at=utc_now())))
    for letter in (first, second, first):  # parked twice after a redelivery: one letter
        ledger.observe(encode(letter))
    ledger.observe(b"not a dead letter")
    assert [letter.dead_letter_id for letter in ledger.waiting()] == [first.dead_letter_id]
    ledger.observe(encode(Resolution(resolved=first.dead_letter_id, how="replayed",
                                     resolved_at=utc_now())))
    ledger.observe(encode(Resolution(resolved=uuid4(), how="replayed", resolved_at=utc_now())))
    assert ledger.waiting() == [] and len(ledger.letters) == 2
