"""The command-results view: each command's result by command id, for GET /commands/{id}.

Fed from the command-results topic (keyed by command id), so any worker can route a
lookup to the result's owner and wait there for a result that has not arrived yet.
"""

from faust import StreamT
from pydantic import ValidationError

from agents.dead_letters import park
from agents.progress import progress
from streams import topics
from streams.app import app, bytes_table
from streams.envelopes import CommandResult

NAME = "command-results"
RESULTS = bytes_table(f"{NAME}-v1")


@app.agent(topics.command_results, concurrency=1)
async def record_results(stream: StreamT[bytes]) -> None:
    async for event in stream.events():
        message = event.message
        try:
            result = CommandResult.model_validate_json(event.value)
        except ValidationError as exc:
            await park(event, f"unreadable command result: {exc}")
        else:
            key = str(result.command_id).encode()
            if key not in RESULTS:
                RESULTS[key] = event.value
        progress.folded(NAME, message.partition, message.offset, message.timestamp)


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
