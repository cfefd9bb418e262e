"""The results a worker's requests wait for: resolved by the record, dropped when done, and
handed to the fallback when the follower stops."""

import pytest

from agents.replies import Replies


async def test_a_result_resolves_every_request_waiting_for_it_and_only_them() -> None:
    replies = Replies()
    replies.following = True
    first, second = replies.expect("c-1"), replies.expect("c-1")
    other = replies.expect("c-2")
    assert first is not None and second is not None and other is not None
    replies.observe(b"c-1", b"result")
    assert (first.result(), second.result()) == (b"result", b"result")
    assert not other.done()
    assert list(replies.waiting) == [b"c-2"]


async def test_nothing_is_awaited_while_not_following_and_a_stop_fails_the_waiting() -> None:
    replies = Replies()
    assert replies.expect("c-1") is None
    replies.following = True
    waiting = replies.expect("c-1")
    assert waiting is not None
    replies.lost()
    with pytest.raises(ConnectionError):
        waiting.result()
    assert replies.expect("c-2") is None and replies.waiting == {}


async def test_a_request_that_gave_up_leaves_nothing_behind() -> None:
    replies = Replies()
    replies.following = True
    future = replies.expect("c-1")
    assert future is not None
    future.cancel()
    replies.forget("c-1", future)
    assert replies.waiting == {}
    replies.observe(b"c-1", b"late")  # a result nobody waits for any more
