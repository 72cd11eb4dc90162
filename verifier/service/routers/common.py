"""Helpers shared by the routers: JSON responses and the documented problem answers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from verifier.service.problems import MEDIA_TYPE


def json_response(body: Any) -> Response:
    """A JSON answer (UTF-8, Chinese text unescaped)."""
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        media_type="application/json",
    )


_PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}
_WHY = {
    400: "The body is not well-formed JSON (or not UTF-8, or has a duplicate member).",
    401: "The API key is malformed, unknown or revoked.",
    403: "The API key may not do this (e.g. verify this licence type).",
    413: "The body is over this operation's limit.",
    415: "The body is not of the media type this operation reads.",
    422: "The request breaks the schema (`errors` names each member), or the licence "
    "cannot be read (`reason` names the step).",
    429: "Over the caller's rate; see Retry-After.",
    503: "The chain could not be read, so the licence could not be checked. This is never "
    "a verdict about the licence: try again later.",
}


def answers(model: type[BaseModel], description: str, *statuses: int) -> dict[int | str, Any]:
    """OpenAPI `responses`: the 200 answer's model and these problem statuses."""
    result: dict[int | str, Any] = {200: {"model": model, "description": description}}
    result.update(problems(*statuses))
    return result


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these problem statuses."""
    return {
        status: {
            "description": _WHY[status],
            "content": {MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def json_body(model_name: str, description: str) -> dict[str, Any]:
    """openapi_extra declaring an application/json request body of a named model."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model_name}"}}
            },
        }
    }
