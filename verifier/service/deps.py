"""What a route depends on, as Annotated aliases (FastAPI's dependency injection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from verifier.service.access import Caller, Gate
from verifier.service.apikeys import KeyStore
from verifier.service.audit import AppendingLog
from verifier.service.live import LiveIndex
from verifier.service.metrics import Metrics
from verifier.service.settings import Settings
from verifier.service.verification import VerificationService


@dataclass(frozen=True)
class Services:
    """Everything one app instance holds (built by create_app, kept on app.state)."""

    settings: Settings
    live: LiveIndex
    keys: KeyStore
    audit: AppendingLog
    metrics: Metrics
    gate: Gate
    verification: VerificationService
    catalogue_json: bytes


def get_services(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


# Declared for the OpenAPI document (the lock in /docs); the header is read in admit().
_bearer = HTTPBearer(
    auto_error=False,
    description="An approval system's API key (`elicence apikey create`). Without one, "
    "calls are anonymous and limited per address.",
)


def admit(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Caller:
    """The caller, authenticated and within its rate."""
    services = get_services(request)
    address = request.client.host if request.client else "unknown"
    return services.gate.admit(request.headers.get("authorization"), address)


# For a route that authenticates by itself: shows the lock in /docs.
BEARER = Security(_bearer)
ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(admit)]
