"""GET /v1/catalogue: the licence types and their fields, for pages and clients.

The web page reads its licence types here (verifier/web/static/js/common.js), so the page
and the service can never disagree on a type's field order, which decides how a QR
payload is laid out. Anonymous; unlike verdicts it may be kept by the browser
(`Cache-Control: no-cache` with an ETag, verifier.service.headers): an unchanged
catalogue costs a 304.

Every version the service holds is served, and every version the registry published
that it did not hold yet is loaded from the index first (checked against the
registry's hash: verifier.type_loading), so the page reads what the chain publishes.
Each version says its definition's SHA-256 and whether the registry published it with
that very hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request, Response

from ledger.index import RegistryIndex
from licence.catalogue import Label, LicenceType, catalogue
from verifier.errors import CouldNotCheck, VerifierError
from verifier.service.deps import ServicesDep
from verifier.service.models import CatalogueOut
from verifier.type_loading import PublishedRecord, TypeLoader

log = logging.getLogger("elicence.service")

router = APIRouter(prefix="/v1", tags=["catalogue"])

_CACHE = "no-cache"


def _label(value: Label | None) -> dict[str, str] | None:
    return None if value is None else {"zh": value.zh, "en": value.en}


def _on_chain(
    t: LicenceType, published: Mapping[tuple[int, int], PublishedRecord] | None
) -> dict[str, Any]:
    record = None if published is None else published.get((t.code, t.version))
    return {
        "definitionHash": t.definition_hash.hex(),
        # None: the chain has not been read yet; False: not published, or with another
        # definition (publishedHash then says which).
        "published": None
        if published is None
        else record is not None and record.definition_hash == t.definition_hash,
        "publishedAt": None if record is None else record.block_number,
        "publishedHash": None if record is None else record.definition_hash.hex(),
    }


def catalogue_json(
    published: Mapping[tuple[int, int], PublishedRecord] | None = None,
) -> dict[str, Any]:
    """The catalogue as the API shows it: every version of every type it holds, by code
    and version, with its state in the registry (`published`: None when unknown)."""
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
                **_on_chain(t, published),
            }
            for t in catalogue().every_version()
        ]
    }


class _Served:
    """The body last served, and what it was made from."""

    def __init__(self) -> None:
        self.made_from: object = None
        self.body = b""
        self.failed: set[tuple[int, int]] = set()


async def _body(request: Request, services: ServicesDep) -> bytes:
    served: _Served | None = getattr(request.app.state, "catalogue_served", None)
    if served is None:
        served = request.app.state.catalogue_served = _Served()
    index: RegistryIndex | None
    try:
        # Versions published since the last request are served at once.
        index = (await services.live.fresh()).index
    except CouldNotCheck:
        index = services.live.index
    if index is None:  # the chain has not been reached yet
        return services.catalogue_json
    published = {(p.code, p.version): p for p in index.published_types()}
    held = catalogue()
    missing = [key for key in published if key not in served.failed and not _holds(key)]
    if missing:
        loader = services.verification.type_loader(index)
        await asyncio.to_thread(_load, loader, missing, served.failed)
    made_from = (len(held.every_version()), tuple(sorted(published.items())))
    if made_from != served.made_from:
        served.body = json.dumps(catalogue_json(published), ensure_ascii=False).encode("utf-8")
        served.made_from = made_from
    return served.body


def _holds(key: tuple[int, int]) -> bool:
    try:
        catalogue().by_code(*key)
    except KeyError:
        return False
    return True


def _load(loader: TypeLoader, keys: list[tuple[int, int]], failed: set[tuple[int, int]]) -> None:
    for code, version in keys:
        try:
            loader.load(code, version)
        except VerifierError as exc:
            # Served without it (and not tried again): the reason is the operator's to read.
            failed.add((code, version))
            log.warning("licence type %d version %d not served: %s", code, version, exc)


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
    """Every licence type version: its id, on-chain code, version, names (zh/en), the
    departments that issue it, and its fields in order, each with its labels, kind,
    whether it is required, personal data, or always disclosed, its length limit and
    pattern; its definition's SHA-256 and whether the registry published it with that
    hash, in which block (anonymous; may be cached, revalidated by ETag)."""
    body = await _body(request, services)
    tag = _etag(body)
    headers = {"ETag": tag, "Cache-Control": _CACHE}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
