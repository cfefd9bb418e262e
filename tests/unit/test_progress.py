"""Long CLI work reports progress as plain lines when its output is not a terminal."""

import io

from ops.progress import Reporter


def test_plain_lines_count_and_finish_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Reporter("verify", total=10, out=out, every=0.0) as bar:
        for _ in range(10):
            bar.advance()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("verify: 1 of 10 (10 %")
    assert lines[-1].startswith("verify: 10 of 10 (100 %") and lines[-1].endswith("(done)")


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with Reporter("verify", total=3, out=out, quiet=True, every=0.0) as bar:
        bar.advance(3)
    assert out.getvalue() == ""
