"""POST /v1/holder/verifications: a holder learns who verified their licence, and when."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from verifier.service.deps import CallerDep, ServicesDep
from verifier.service.models import HolderLogOut, LicenceInput
from verifier.service.requests import live_deployment, load_licence, read_json, validate
from verifier.service.routers.common import answers, json_body, json_response
from verifier.service.settings import MAX_JSON_BYTES

router = APIRouter(prefix="/v1/holder", tags=["holder"])


@router.post(
    "/verifications",
    summary="Who verified my licence",
    response_model=None,
    responses=answers(
        HolderLogOut, "The verifications, oldest first.", 400, 401, 403, 413, 415, 422, 429, 503
    ),
    openapi_extra=json_body(
        "LicenceInput",
        f"The full licence, with its secret (a document or the full EL1 payload), as proof "
        f"of holding it; at most {MAX_JSON_BYTES} bytes.",
    ),
)
async def holder_verifications(
    request: Request, caller: CallerDep, services: ServicesDep
) -> Response:
    """List which clients verified a licence, when, for what purpose and with what verdict.

    Only the holder may ask: the proof of holding is the full licence, whose secret
    re-derives every salt, leading to a root anchored in the trusted registry. A
    presentation does not prove holding (anyone the holder showed it to has it): 403
    `holding-not-proven`. An API key limited to licence types may ask only about those
    (403 `not-permitted`). The list holds only verifications of documents that proved to
    be this licence, and every query is itself audited (operation `holder-log`).
    """
    body = validate(LicenceInput, await read_json(request))
    deployment = live_deployment(services.live)  # what an EL2: payload is read with
    document = await services.verification.read_licence(lambda: load_licence(body, deployment))
    answer = await services.verification.holder_log(document, caller)
    return json_response(answer)
