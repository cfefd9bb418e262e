"""Every answer is JSON, even for a path or method no view serves, or for a bug."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web as aiohttp_web

from streams.app import app

log = logging.getLogger(__name__)
Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]


def error(status: int, message: str, headers: Mapping[str, str] | None = None,
          **extra: Any) -> aiohttp_web.Response:
    return aiohttp_web.json_response({"error": message, **extra}, status=status, headers=headers)


@aiohttp_web.middleware
async def json_errors(request: aiohttp_web.Request,
                      handler: Handler) -> aiohttp_web.StreamResponse:
    try:
        return await handler(request)
    except aiohttp_web.HTTPMethodNotAllowed as exc:
        return error(405, f"{exc.method} is not allowed on {request.path}",
                     headers={"Allow": exc.headers["Allow"]}, allowed=sorted(exc.allowed_methods))
    except aiohttp_web.HTTPNotFound:
        return error(404, f"no such path: {request.path} (the API is at /openapi.json)")
    except aiohttp_web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal error (logged by the worker)")


app.web.web_app.middlewares.append(json_errors)
