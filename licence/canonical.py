"""Canonical JSON: RFC 8785 (JCS), the only serialisation that is ever hashed.

JCS fixes key order (sorted by UTF-16 code units), number form and string escaping, so
two implementations that agree on a JSON value agree on its bytes. Chinese text is
written as UTF-8, not escaped.

This is the definition, through the rfc8785 package; the hashing in licence.digest
writes its few shapes out directly. What elicence hashes is only ever strings, lists of
strings and objects of those, and for strings JCS's form is exactly what Python's json
module writes with ensure_ascii=False (the short escapes \\b \\f \\n \\r \\t, other
control characters as lowercase \\u00xx, nothing else escaped): tests compare
licence.digest's bytes with these on arbitrary text.
"""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value."""
    return bytes(rfc8785.dumps(value))
