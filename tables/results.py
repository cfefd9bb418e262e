"""The command-results view: each command's first result by command id, for
GET /commands/{id}, and waiting for a result that has not arrived yet."""

from streams.app import bytes_table
from streams.envelopes import CommandResult
from tables.progress import progress

NAME = "command-results"
RESULTS = bytes_table(f"{NAME}-v1")


def result_of(command_id: str) -> CommandResult | None:
    raw = RESULTS.get(command_id.encode())
    return CommandResult.model_validate_json(raw) if raw is not None else None


async def wait_for_result(command_id: str, partition: int, timeout: float) -> CommandResult | None:
    found: list[CommandResult] = []

    def arrived() -> bool:
        result = result_of(command_id)
        if result is not None:
            found.append(result)
        return result is not None

    await progress.wait_until(NAME, partition, arrived, timeout)
    return found[-1] if found else None
