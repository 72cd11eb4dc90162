"""GET /healthz, /readyz and /metrics: for the operator's probes and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Response

from verifier.service.deps import ServicesDep
from verifier.service.metrics import CONTENT_TYPE
from verifier.service.models import HealthOut, ReadyOut
from verifier.service.routers.common import answers, json_response

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Alive",
    response_model=None,
    responses={200: {"model": HealthOut, "description": "The process answers."}},
)
async def healthz() -> Response:
    """The service process is up (says nothing about the chain)."""
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Ready",
    response_model=None,
    responses=answers(ReadyOut, "The index reflects the chain's head.", 503),
)
async def readyz(services: ServicesDep) -> Response:
    """The index has caught up with the chain's head (less the configured confirmations),
    so verifications can be answered; 503 while the chain cannot be read."""
    view = await services.live.fresh()
    return json_response(
        {
            "status": "ready",
            "blockHeight": view.height,
            "chainId": view.chain_id,
            "registry": view.registry_address,
        }
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_model=None,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "The text exposition format.",
        }
    },
)
async def metrics(services: ServicesDep) -> Response:
    """Requests by route and status, verdicts by status, the latency histogram, the
    index height and the number of head checks."""
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE)
