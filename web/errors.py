"""JSON error bodies for bad input: what went wrong and, for invalid fields, where."""

from typing import Any

from pydantic import ValidationError


def field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "body", "message": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]
