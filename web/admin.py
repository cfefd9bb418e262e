"""Who may change operational state over HTTP: a caller holding SHOPSTREAM_ADMIN_TOKEN.

Without a configured token those operations are off (404 for every caller). The token is
compared in constant time and never logged or echoed.
"""

import hmac

from faust.web import Request, Response, View

from streams.app import settings


def refusal(view: View, request: Request) -> Response | None:
    """None if the request carries the admin token; else the JSON error to answer with."""
    if not settings.admin_token:
        return view.error(404, "admin operations are off: no SHOPSTREAM_ADMIN_TOKEN is set")
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not offered:
        return view.json({"error": "send Authorization: Bearer <SHOPSTREAM_ADMIN_TOKEN>"},
                         status=401, headers={"WWW-Authenticate": 'Bearer realm="shopstream"'})
    if not hmac.compare_digest(offered.strip().encode(), settings.admin_token.encode()):
        return view.error(403, "the admin token is wrong")
    return None
