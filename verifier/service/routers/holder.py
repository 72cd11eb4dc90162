"""POST /v1/holder/verifications: a holder learns who verified their licence, and when."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from verifier.service.deps import CallerDep, ServicesDep
from verifier.service.models import HolderLogOut, LicenceInput
from verifier.service.requests import load_licence, read_json, validate
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
        f"The licence or a presentation of it, as proof of holding it; at most "
        f"{MAX_JSON_BYTES} bytes.",
    ),
)
async def holder_verifications(
    request: Request, _caller: CallerDep, services: ServicesDep
) -> Response:
    """List which clients verified a licence, when, for what purpose and with what verdict.

    The licence (or any presentation of it) is the proof of holding it: its fields and
    salts must lead to an anchored root (otherwise 403 `holding-not-proven`). Anyone the
    holder showed it to can ask as well; the list holds no personal data.
    """
    body = validate(LicenceInput, await read_json(request))
    answer = await services.verification.holder_log(load_licence(body))
    return json_response(answer)
