"""A full document's licence id by issuing's compiled encoder (issuer/_wrap.c), when built.

Hashing a full document's fields into its licence id (a salt, a commitment per field and
the leaf: about 34 SHA-256) was the largest single step of a verification in the
service: 22.7 µs a business licence in Python against 4.0 µs through
`issuer.encoder.LicenceIds`, which issuing already uses and tests against the format's
Python definitions on arbitrary text (tests/issuer/test_encoder.py). Issue 17's replica
spends about 140 µs of CPU a request, so this is an eighth of it.

Only the id is taken from the encoder; everything that judges it (the proof, the anchor,
the statuses) is unchanged, and a document the encoder cannot take (a presentation, the
sm3 suite, a secret of another length, text the encoder refuses) is hashed by
licence/ in Python exactly as before. ELICENCE_PURE_PYTHON=1 turns it off with the rest
of the compiled part (issuer.compiled); the test suite runs once each way.
"""

from __future__ import annotations

from functools import cache

from issuer import compiled
from issuer.encoder import COMPILED_SUITE, LicenceIds
from licence.digest import SECRET_BYTES
from licence.document import LicenceDocument


@cache
def _encoder(type_id: str, names: tuple[str, ...]) -> LicenceIds:
    # One plan per type version's field list: a handful in a process.
    return LicenceIds(type_id, names, COMPILED_SUITE)


def seed_licence_id(document: LicenceDocument) -> bool:
    """Compute `document.licence_id` with the compiled encoder when it applies, so that
    reading the property costs nothing; True if it did. The value is the one the Python
    definition gives (licence.digest), which the property computes otherwise."""
    secret = document.secret
    if (
        secret is None
        or len(secret) != SECRET_BYTES
        or document.suite != COMPILED_SUITE
        or "licence_id" in document.__dict__
        or not compiled.available()
    ):
        return False
    licence_type = document.licence_type
    try:
        ids, _ = _encoder(licence_type.id, licence_type.field_names).encode(
            [document.fields], secret
        )
    except (TypeError, ValueError):
        # Text the encoder will not take (say, a lone surrogate): the Python definition
        # decides, and words the error, as it always did.
        return False
    # functools.cached_property keeps its value in the instance's __dict__ (a frozen
    # dataclass's too); this is that value, made another way.
    document.__dict__["licence_id"] = ids[0]
    return True
