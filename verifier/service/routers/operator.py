"""GET /operator (the operator's page) and GET /v1/operator/series (its data).

The page itself holds no data and is served to anyone, like the verify page; it asks for
an operator key (`elicence apikey create --operator`) and sends it as a bearer token to
/v1/operator/series, which answers 401 without a usable key and 403 with a key that is
not an operator's. The key stays in the tab (sessionStorage), never in a cookie, so no
other site can make the browser send it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from verifier.service.access import Caller
from verifier.service.apikeys import OPERATOR_SCOPE
from verifier.service.deps import BEARER, get_services
from verifier.service.errors import NotPermitted, Unauthenticated
from verifier.service.operator_series import OperatorSeries
from verifier.service.routers.common import json_response, problems

router = APIRouter(tags=["operations"])

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
# The page's own files, served from the package whatever the web root (--web-root
# replaces the verify page, not the operator's).
_ASSETS = {
    "/operator": ("operator.html", "text/html; charset=utf-8"),
    "/operator/operator.js": ("operator.js", "text/javascript; charset=utf-8"),
    "/operator/operator.css": ("operator.css", "text/css; charset=utf-8"),
}


def is_operator(caller: Caller) -> bool:
    """Whether the caller holds an operator key."""
    return caller.key is not None and caller.key.types == frozenset({OPERATOR_SCOPE})


def operator(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, BEARER],
) -> Caller:
    """The caller, who must hold an operator key (within its rate like any key)."""
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("the operator page needs an operator key: 'Authorization: Bearer'")
    address = request.client.host if request.client else "unknown"
    caller = get_services(request).gate.admit(header, address)
    if not is_operator(caller):
        raise NotPermitted(
            f"the API key {caller.name!r} is not an operator key "
            "(elicence apikey create --operator)"
        )
    return caller


OperatorDep = Annotated[Caller, Depends(operator)]


@router.get(
    "/v1/operator/series",
    summary="Operator series",
    response_model=None,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "The last hour, one point per 10 s.",
        },
        **problems(401, 403, 429),
    },
)
async def operator_series(request: Request, _caller: OperatorDep) -> Response:
    """The last hour of this service's metrics, one point per 10 s: verifications/s by
    verdict, latency percentiles of the verification routes (ms), rejected requests/s by
    status, index lag behind the chain's head (blocks) and audit records waiting to be
    stored. With several workers, the sums over every worker of this `elicence serve`
    (`aggregated`); other replicas are not included. Needs an operator key."""
    series: OperatorSeries = request.app.state.operator_series
    return json_response(series.to_json())


def _asset(path: str) -> Response:
    name, media_type = _ASSETS[path]
    return Response((STATIC / name).read_bytes(), media_type=media_type)


@router.get("/operator", include_in_schema=False)
async def operator_page() -> Response:
    """The operator's page (its data needs an operator key)."""
    return _asset("/operator")


@router.get("/operator/operator.js", include_in_schema=False)
async def operator_script() -> Response:
    """The page's script."""
    return _asset("/operator/operator.js")


@router.get("/operator/operator.css", include_in_schema=False)
async def operator_style() -> Response:
    """The page's style sheet."""
    return _asset("/operator/operator.css")
