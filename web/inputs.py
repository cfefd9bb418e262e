"""What a request carries besides its query: a bounded body, and a key from its path."""

import asyncio
from urllib.parse import unquote_to_bytes

from faust.web import Request

MAX_KEY_LENGTH = 200  # characters, as an aggregate id or a name in the contracts
BODY_SECONDS = 10.0


class BadInput(ValueError):
    """Input refused before any work is done; the message says why, `status` what to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) past `limit` bytes: up front by its Content-Length, or
    as soon as a chunked body outgrows it; and (408) if it trickles in for too long."""
    too_large = BadInput(413, f"the body is over the {limit}-byte limit (SHOPSTREAM_MAX_BODY)")
    if (request.content_length or 0) > limit:
        raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise BadInput(408, f"the body did not arrive within {BODY_SECONDS:g} s") from None
    return bytes(body)


def path_key(request: Request, segment: int) -> str:
    """The percent-decoded path segment `segment` (of the raw path split on '/') as a key.

    Decoded here because the router leaves a sequence that is not UTF-8 as it came, so
    `%FF` would otherwise read as the three-character key '%FF'."""
    raw = request.rel_url.raw_path.split("/")[segment]
    try:
        key = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(400, "the key is not UTF-8 once percent-decoded") from None
    if len(key) > MAX_KEY_LENGTH:
        raise BadInput(400, f"a key is at most {MAX_KEY_LENGTH} characters")
    return key
