"""Canonical JSON: RFC 8785 (JCS), the only serialisation that is ever hashed.

JCS fixes key order (sorted by UTF-16 code units), number form and string escaping, so
two implementations that agree on a JSON value agree on its bytes. Chinese text is
written as UTF-8, not escaped.
"""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value."""
    return bytes(rfc8785.dumps(value))
