"""The fault scenarios under pytest: the fast ones always, every one with SHOPSTREAM_FAULTS=all."""

import os
from pathlib import Path

import pytest

from tests.faults.harness import play
from tests.faults.scenarios import SCENARIOS, Scenario

pytestmark = [pytest.mark.integration, pytest.mark.faults]
EVERY = os.environ.get("SHOPSTREAM_FAULTS") == "all"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_after_the_fault_the_views_fold_the_log_and_each_command_has_one_result(
    scenario: Scenario, tmp_path: Path,
) -> None:
    if not (scenario.fast or EVERY):
        pytest.skip("slow fault scenario: SHOPSTREAM_FAULTS=all, or `make faults`")
    row = await play(scenario, tmp_path)
    assert row.passed, "\n".join(row.problems)
    assert row.mismatches == 0 and row.commands > scenario.commands * 0.8
