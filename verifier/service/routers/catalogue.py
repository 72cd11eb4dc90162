"""GET /v1/catalogue: the licence types and their fields, for pages and clients.

The web page reads its licence types here (verifier/web/static/js/common.js), so the page
and the service can never disagree on a type's field order, which decides how a QR
payload is laid out. Anonymous; unlike verdicts it may be kept by the browser
(`Cache-Control: no-cache` with an ETag, verifier.service.headers): an unchanged
catalogue costs a 304.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request, Response

from licence.catalogue import Label, catalogue
from verifier.service.deps import ServicesDep
from verifier.service.models import CatalogueOut

router = APIRouter(prefix="/v1", tags=["catalogue"])

_CACHE = "no-cache"


def _label(value: Label | None) -> dict[str, str] | None:
    return None if value is None else {"zh": value.zh, "en": value.en}


def catalogue_json() -> dict[str, Any]:
    """The catalogue as the API shows it: the current version of every type."""
    return {
        "licenceTypes": [
            {
                "id": t.id,
                "code": t.code,
                "version": t.version,
                "name": _label(t.name),
                "owners": [_label(owner) for owner in t.owners],
                "fields": [
                    {
                        "name": f.name,
                        "label": _label(f.label),
                        "kind": f.kind.value,
                        "required": f.required,
                        "personal": f.personal,
                        "mandatoryDisclosure": f.name in t.mandatory_disclosure,
                        "absentMeans": _label(f.absent_means),
                        "maxLength": f.max_length,
                        "pattern": f.pattern.pattern if f.pattern is not None else None,
                    }
                    for f in t.fields
                ],
                "mandatoryDisclosure": [n for n in t.field_names if n in t.mandatory_disclosure],
            }
            for t in catalogue()
        ]
    }


@lru_cache(maxsize=4)
def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(header: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names `tag` (weak comparison, RFC 9110 13.1.2)."""
    if not header:
        return False
    held = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in held or tag in held


@router.get(
    "/catalogue",
    summary="Licence types and their fields",
    response_model=None,
    responses={
        200: {"model": CatalogueOut, "description": "The catalogue."},
        304: {"description": "Unchanged since the ETag sent in If-None-Match."},
    },
)
async def get_catalogue(request: Request, services: ServicesDep) -> Response:
    """Every licence type: its id, on-chain code, version, names (zh/en), the departments
    that issue it, and its fields in order, each with its labels, kind, whether it is
    required, personal data, or always disclosed, its length limit and pattern
    (anonymous; may be cached, revalidated by ETag)."""
    body = services.catalogue_json
    tag = _etag(body)
    headers = {"ETag": tag, "Cache-Control": _CACHE}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
