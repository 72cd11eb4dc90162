"""GET /v1/trust-anchor and GET /v1/trust-snapshot: what the web page's offline mode
pins and the signed snapshot it verifies against (verifier.trust_snapshot).

Both are public and anonymous: the anchor is what the service itself trusts, the
snapshot carries its own proof of origin (the page checks the governor's signatures
against the anchor). Unlike every other /v1/ answer they may be kept by the browser
(`Cache-Control: no-cache`, never `no-store`, verifier.service.headers): the page keeps
them for when the network is gone, and asks again with `If-None-Match` when it is back;
an unchanged one costs a 304.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ledger.config import governor_of
from ledger.index import RegistryIndex
from verifier.service.deps import ServicesDep
from verifier.service.problems import MEDIA_TYPE, problem, problem_response
from verifier.service.settings import Settings
from verifier.trust_snapshot import pinned_seal_key

router = APIRouter(prefix="/v1", tags=["trust"])

GZIP = "application/gzip"
_CACHE = "no-cache"
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Unchanged since the ETag sent in If-None-Match."}
}
_NO_SNAPSHOT: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "No trust snapshot is published here (none configured, or its "
        "file is missing).",
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
}


class TrustAnchorOut(BaseModel):
    """What this service trusts: a verifier offline pins these."""

    model_config = ConfigDict(populate_by_name=True)

    chain_id: int | None = Field(
        alias="chainId", description="The chain id of the registry (null if not known yet)."
    )
    registry: str | None = Field(description="The trusted registry's address.")
    governor: str | None = Field(
        description="The governor address whose signature a trust snapshot must carry."
    )
    governor_seal_key: str | None = Field(
        alias="governorSealKey",
        description="The governor's SM2 public key (128 hex digits, X || Y) whose "
        "co-signature a trust snapshot must carry; null if none is configured.",
    )


def trust_anchor(settings: Settings, index: RegistryIndex | None) -> dict[str, object]:
    """The anchor from the settings, else the home's configuration and keys, else (chain
    id and registry) the index the service reads, if it is open.

    Raises:
        ConfigError: the home's config.json or a setting is not valid.
        SnapshotRefused: the governor's SM2 key configured is not an SM2 public key.
    """
    from eth_utils.address import to_checksum_address

    config = settings.trust_anchor()
    named = (settings.governor or "").replace(",", " ").split()
    governor = named[0] if named else governor_of(settings.home)
    seal_key = pinned_seal_key(settings.home, settings.governor_seal_key)
    chain_id = config.chain_id
    registry = config.registry
    if index is not None:
        chain_id = chain_id if chain_id is not None else index.chain_id
        registry = registry or index.registry_address
    return {
        "chainId": chain_id,
        "registry": to_checksum_address(registry) if registry else None,
        "governor": to_checksum_address(governor) if governor else None,
        "governorSealKey": None if seal_key is None else seal_key.hex(),
    }


@router.get(
    "/trust-anchor",
    summary="The trust anchor to pin offline",
    response_model=None,
    responses={
        200: {"model": TrustAnchorOut, "description": "The anchor."},
        **_NOT_MODIFIED,
    },
)
async def get_trust_anchor(request: Request, services: ServicesDep) -> Response:
    """The chain id, registry, governor address and governor SM2 key this service trusts:
    the web page's offline mode pins them and refuses a trust snapshot that does not
    match them (anonymous; may be cached, revalidated by ETag)."""
    anchor = trust_anchor(services.settings, services.live.index)
    body = json.dumps(anchor, separators=(",", ":")).encode("utf-8")
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _answer(request, tag, lambda: Response(body, media_type="application/json"))


# The published file as last read: (device, inode, size, mtime) -> its bytes and ETag.
# Anyone may ask for it, and it can be tens of MB, so it is read and hashed once per
# version of the file and served from this one copy, not read again for every request.
_published: dict[tuple[int, int, int, int], tuple[bytes, str]] = {}


@router.get(
    "/trust-snapshot",
    summary="The trust snapshot for offline verification",
    response_model=None,
    responses={
        200: {
            "content": {GZIP: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The snapshot file (gzip JSON, verifier/trust_snapshot.py), "
            "as `elicence snapshot export` wrote it.",
        },
        **_NOT_MODIFIED,
        **_NO_SNAPSHOT,
    },
)
async def get_trust_snapshot(request: Request, services: ServicesDep) -> Response:
    """The trust snapshot the operator publishes (ELICENCE_TRUST_SNAPSHOT), for the web
    page to verify with no network; it is signed by the governor, and whoever loads it
    checks that (anonymous; may be cached, revalidated by ETag)."""
    path = services.settings.trust_snapshot
    stat = _stat(path)
    if path is None or stat is None:
        detail = (
            "this service publishes no trust snapshot"
            if path is None
            else "the trust snapshot this service publishes is missing; ask its operator"
        )
        body = problem(
            404, "not-found", "There is nothing at this address", detail, instance=request.url.path
        )
        return problem_response(body, {"Cache-Control": _CACHE})
    key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    held = _published.get(key)
    if held is not None:
        data, tag = held
    else:
        try:
            data = await run_in_threadpool(path.read_bytes)
        except OSError:
            data = None
    if data is None:
        body = problem(
            404,
            "not-found",
            "There is nothing at this address",
            "the trust snapshot this service publishes cannot be read; ask its operator",
            instance=request.url.path,
        )
        return problem_response(body, {"Cache-Control": _CACHE})
    if held is None:
        tag = '"' + hashlib.sha256(data).hexdigest() + '"'
        if len(data) == stat.st_size:  # not replaced between the stat and the read
            _published.clear()  # only the current file is worth keeping
            _published[key] = (data, tag)
    disposition = f'attachment; filename="{path.name}"' if path.name.isascii() else "attachment"
    return _answer(
        request,
        tag,
        lambda: Response(data, media_type=GZIP, headers={"Content-Disposition": disposition}),
    )


def _stat(path: Path | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return None
    return found if path.is_file() else None


def _answer(request: Request, tag: str, make: Callable[[], Response]) -> Response:
    """304 if the caller holds `tag`, else the answer `make()` gives, with the tag."""
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": _CACHE})
    answer = make()
    answer.headers["ETag"] = tag
    answer.headers["Cache-Control"] = _CACHE
    return answer


def _matches(header: str | None, tag: str) -> bool:
    """Whether an If-None-Match header names `tag` (weak comparison, RFC 9110 13.1.2)."""
    if not header:
        return False
    held = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in held or tag in held
