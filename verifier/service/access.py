"""Who is calling, what they may do, and whether they are within their rate.

Approval systems send `Authorization: Bearer <API key>`; anyone else is anonymous and
limited by address at the operator's low rate. A key may be limited to licence types
(it may verify only those) and fields (it sees only those; the others are withheld).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from licence.catalogue import LicenceType
from verifier.service.apikeys import ApiKey, KeyStore
from verifier.service.errors import NotPermitted, RateLimited, Unauthenticated
from verifier.service.ratelimit import Limiter
from verifier.service.settings import Settings

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """The client of one request."""

    name: str  # the API key's name, or "anonymous": what the audit log records
    key: ApiKey | None
    sees_personal: bool = False  # anonymous callers, when the operator says so

    def check_type(self, licence_type: LicenceType) -> None:
        """NotPermitted unless this caller may verify `licence_type`."""
        types = self.key.types if self.key is not None else None
        if types is not None and licence_type.id not in types:
            raise NotPermitted(
                f"the API key {self.name!r} may verify {sorted(types)}, not {licence_type.id}"
            )

    def visible(self, licence_type: LicenceType) -> frozenset[str] | None:
        """The fields this caller may see (None: all)."""
        if self.key is not None:
            return self.key.fields
        if not self.sees_personal:
            return frozenset(f.name for f in licence_type.fields if not f.personal)
        return None


class Gate:
    """Authentication and rate limits."""

    def __init__(
        self,
        keys: KeyStore,
        settings: Settings,
        limiter: Limiter,
        key_limiter: Limiter | None = None,
    ) -> None:
        """`limiter` counts anonymous callers; `key_limiter` API keys (default: the
        same), shared by every replica when the keys are (verifier.service.stores)."""
        self._keys = keys
        self._settings = settings
        self._limiter = limiter
        self._key_limiter = key_limiter if key_limiter is not None else limiter
        # What admitting a key's requests takes besides its look-up, worked out once per
        # key record (the store hands out the same record until the key changes): its
        # bucket, rate, burst and Caller.
        self._admits: dict[int, _Admit] = {}

    def admit(self, authorization: str | None, address: str) -> Caller:
        """The caller of a request with this Authorization header from this address."""
        settings = self._settings
        if authorization is None:
            wait = self._limiter.take(
                "addr:" + address, settings.anonymous_rate, settings.anonymous_burst
            )
            if wait:
                raise RateLimited(
                    "anonymous requests from this address are over the operator's rate of "
                    f"{settings.anonymous_rate:g} per second; approval systems use an API key",
                    _seconds(wait),
                )
            return Caller(ANONYMOUS, None, settings.anonymous_sees_personal)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'")
        key = self._keys.authenticate(token.strip())
        if key is None:
            raise Unauthenticated("the API key is unknown or revoked")
        admit = self._admits.get(id(key))
        if admit is None or admit.key is not key:
            admit = self._admit(key)
        wait = self._key_limiter.take(admit.bucket, admit.rate, admit.burst)
        if wait:
            raise RateLimited(
                f"the API key {key.name!r} is over its rate of {admit.rate:g} requests per second",
                _seconds(wait),
            )
        return admit.caller

    def _admit(self, key: ApiKey) -> _Admit:
        settings = self._settings
        rate = key.rate if key.rate is not None else settings.key_rate
        burst = max(float(settings.key_burst), rate) if key.rate is None else max(rate, 1.0)
        if len(self._admits) >= _ADMITS_KEPT:
            self._admits.clear()  # records of changed keys must not pile up
        admit = self._admits[id(key)] = _Admit(
            key, "key:" + key.name, rate, burst, Caller(key.name, key)
        )
        return admit


# Key records whose admission is remembered (more than any service has keys in use).
_ADMITS_KEPT = 1024


@dataclass(frozen=True)
class _Admit:
    key: ApiKey  # kept, so that its id is not reused by another record while remembered
    bucket: str
    rate: float
    burst: float
    caller: Caller


def _seconds(wait: float) -> int:
    """Retry-After is whole seconds; never 0 (that would invite an immediate retry)."""
    return 3600 if math.isinf(wait) else max(1, math.ceil(wait))
