"""Errors the verifier service raises; verifier.service.problems turns them into HTTP
problem details (RFC 9457) at the edge, and nowhere else.

    VerifierError (verifier.errors)
    ├── CouldNotCheck (ConnectionError)          the ledger could not be read
    └── ServiceError
        ├── MalformedRequest (ValueError)        the body is not JSON, or not UTF-8
        ├── InvalidRequest (ValueError)          JSON that breaks the request schema
        ├── UnusableLicence (ValueError)         a licence that cannot be read at all
        ├── PayloadTooLarge (ValueError)         a body over the route's documented limit
        ├── UnsupportedMediaType (ValueError)    a body of a media type the route refuses
        ├── Unauthenticated (PermissionError)    an unknown, malformed or revoked API key
        ├── NotPermitted (PermissionError)       the key may not verify this licence type
        ├── HoldingNotProven (PermissionError)   a holder's document does not prove holding
        ├── RateLimited                          over the client's quota; retry later
        ├── CouldNotAudit                        the request's audit record was not stored
        ├── UnknownApiKey (LookupError)          no API key of that name (CLI)
        ├── ApiKeyExists (ValueError)            an API key of that name exists already (CLI)
        ├── CannotServe                          no chain for the service, or no port (serve)
        └── StoreError                           the shared-state database cannot be used
            ├── SchemaTooNew                     its schema is newer than this elicence
            └── StoreUnavailable (CouldNotAudit, ConnectionError)  it cannot be reached
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier.errors import VerifierError


@dataclass(frozen=True)
class FieldError:
    """One schema error: where in the request (dotted path) and what is wrong."""

    path: str
    message: str


class ServiceError(VerifierError):
    """Root of the service's own errors."""


class MalformedRequest(ServiceError, ValueError):
    """The request body is not well-formed JSON (or a form that cannot be read)."""


class InvalidRequest(ServiceError, ValueError):
    """The request is JSON but does not follow the operation's schema."""

    def __init__(self, message: str, errors: list[FieldError]) -> None:
        super().__init__(message)
        self.errors = errors


class UnusableLicence(ServiceError, ValueError):
    """The licence (document, payload or image) cannot be read, so nothing can be checked."""

    def __init__(self, message: str, *, reason: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.path = path


class PayloadTooLarge(ServiceError, ValueError):
    """The body is over the route's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over this operation's limit of {limit} bytes")
        self.limit = limit


class UnsupportedMediaType(ServiceError, ValueError):
    """The body's media type is not one the route reads."""


class Unauthenticated(ServiceError, PermissionError):
    """The Authorization header names no usable API key."""


class NotPermitted(ServiceError, PermissionError):
    """The API key is not entitled to verify this licence type."""


class HoldingNotProven(ServiceError, PermissionError):
    """The document offered as proof of holding a licence does not verify as anchored."""


class RateLimited(ServiceError):
    """Over the client's rate; `retry_after` seconds until a request is accepted again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CouldNotAudit(ServiceError):
    """The audit record of a request could not be stored, so the request gets no verdict."""


class UnknownApiKey(ServiceError, LookupError):
    """No API key of that name."""


class ApiKeyExists(ServiceError, ValueError):
    """An API key of that name exists already."""


class CannotServe(ServiceError):
    """The service cannot start: no chain answers and none can be started, or the port
    cannot be listened on."""


class StoreError(ServiceError):
    """The database of the service's shared state (API keys, rate limits, audit log)
    cannot be used; the message names it without its password."""


class SchemaTooNew(StoreError):
    """The database's schema is newer than this elicence knows: a newer version migrated
    it, and this one could misread or damage it."""

    def __init__(self, message: str, found: int, supported: int) -> None:
        super().__init__(message)
        self.found = found
        self.supported = supported


class StoreUnavailable(StoreError, CouldNotAudit, ConnectionError):
    """The shared-state database cannot be reached: a request is not answered (503
    could-not-audit), since neither its key nor its audit record can be checked or kept."""
