"""Admin operations on dead letters over HTTP: list them (with the bodies they carry), replay
or discard them; every one needs the admin token (see `web.admin`)."""

from typing import Any, Literal
from uuid import UUID

import orjson
from faust.web import Request, Response, View
from pydantic import BaseModel, ConfigDict, ValidationError

from agents.dead_letter_watch import LEDGER
from streams import topics
from streams.app import app, settings
from streams.dead_letters import DeadLetter, UnknownLetters, choose, resolve
from web.admin import refusal
from web.errors import field_errors
from web.inputs import BadInput, read_body
from web.queries import BadQuery, flag


class Chosen(BaseModel):
    """The body of a replay or discard: the letters to resolve, or none for every waiting one."""

    model_config = ConfigDict(extra="forbid")
    ids: list[UUID] | None = None


def _shown(letter: DeadLetter) -> dict[str, Any]:
    waiting = letter.dead_letter_id not in LEDGER.resolved
    return {**letter.model_dump(mode="json"), "state": "waiting" if waiting else "resolved"}


@app.page("/admin/dead-letters")
class DeadLetters(View):
    async def get(self, request: Request) -> Response:
        """The waiting dead letters (`?all=true`: resolved ones too), as this worker has read
        them from the dead-letter topic."""
        refused = refusal(self, request)
        if refused is not None:
            return refused
        try:
            everything = flag(request.query, "all", False)
        except BadQuery as exc:
            return self.error(400, str(exc))
        letters = LEDGER.letters.values() if everything else LEDGER.waiting()
        return self.json({"dead_letters": [_shown(letter) for letter in letters],
                          "waiting": len(LEDGER.waiting()), "total": len(LEDGER.letters)})


class Resolving(View):
    how: Literal["replayed", "discarded"]

    async def post(self, request: Request) -> Response:
        refused = refusal(self, request)
        if refused is not None:
            return refused
        try:
            ids = await _chosen_ids(request)
            letters = choose(LEDGER, ids)
        except BadInput as exc:
            return self.error(exc.status, str(exc))
        except ValidationError as exc:
            return self.error(422, "invalid body", details=field_errors(exc))
        except UnknownLetters as exc:
            return self.error(404, str(exc))
        await resolve(letters, self.how, topics.dead_letters.get_topic_name(), _send)
        return self.json({self.how: [str(letter.dead_letter_id) for letter in letters]})


@app.page("/admin/dead-letters/replay")
class Replay(Resolving):
    """Re-submit dead letters to the topics they came from; replaying twice changes nothing."""

    how = "replayed"


@app.page("/admin/dead-letters/discard")
class Discard(Resolving):
    """Give dead letters up: they stop waiting, and nothing is re-submitted."""

    how = "discarded"


async def _chosen_ids(request: Request) -> list[str] | None:
    body = await read_body(request, settings.max_body)
    if not body.strip():
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(400, f"the body is not JSON: {exc}") from None
    chosen = Chosen.model_validate(document)
    return None if chosen.ids is None else [str(i) for i in chosen.ids]


async def _send(topic: str, key: bytes | None, value: bytes) -> object:
    return await app.producer.send_and_wait(topic, key, value, partition=None, timestamp=None,
                                            headers=None)
