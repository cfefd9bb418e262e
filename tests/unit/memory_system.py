"""The whole domain in memory: the same pure deciders, saga and dedupe as the Faust agents,
wired with lists instead of topics, for property tests of the domain's end-to-end rules."""

from collections import deque
from datetime import UTC, datetime
from typing import Any

from domain.aggregates import BY_COMMAND, handle
from domain.rejection import Rejected
from domain.saga import order_of, react
from streams.envelopes import Command, CommandResult, Event, result_of

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class MemorySystem:
    def __init__(self) -> None:
        self.states: dict[tuple[str, str], Any] = {}
        self.results: dict[str, CommandResult] = {}
        self.log: list[Event] = []
        self.sagas: dict[str, Any] = {}
        self.pending: deque[Command] = deque()

    def submit(self, command: Command) -> None:
        self.pending.append(command)
        while self.pending:
            self._handle(self.pending.popleft())

    def _handle(self, command: Command) -> None:
        if str(command.command_id) in self.results:
            return
        aggregate = BY_COMMAND[command.type]
        key = (aggregate.kind, command.aggregate_id)
        state = self.states.get(key)
        try:
            state, events = handle(aggregate, state, command, AT)
        except Rejected as rejection:
            version = state.version if state is not None else 0
            result = result_of(command, "rejected", version, reason=rejection.reason)
            self.results[str(command.command_id)] = result
            self._to_saga(result)
            return
        self.states[key] = state
        self.log.extend(events)
        self.results[str(command.command_id)] = result_of(command, "accepted", state.version)
        for event in events:
            self._to_saga(event)

    def _to_saga(self, message: Event | CommandResult) -> None:
        order_id = order_of(message)
        if order_id is None:
            return
        state, commands = react(self.sagas.get(order_id), message, AT)
        if state is not None:
            self.sagas[order_id] = state
        self.pending.extend(commands)

    def state(self, kind: str, aggregate_id: str) -> Any:
        return self.states.get((kind, aggregate_id))
