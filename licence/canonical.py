"""Canonical JSON: RFC 8785 (JCS), the only serialisation that is ever hashed.

JCS fixes key order (sorted by UTF-16 code units), number form and string escaping, so
two implementations that agree on a JSON value agree on its bytes. Chinese text is
written as UTF-8, not escaped.

What elicence hashes is only ever strings, lists of strings and objects of those. For
them JCS's string form is exactly what Python's json module writes with
ensure_ascii=False (the short escapes \\b \\f \\n \\r \\t, other control characters as
lowercase \\u00xx, nothing else escaped), so they take that fast path; anything else
(numbers, literals, lone surrogates) goes through the rfc8785 package. A test checks the
two agree on arbitrary text.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_string = json.JSONEncoder(ensure_ascii=False).encode


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _fast(value: Any) -> str | None:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        parts = [_fast(v) for v in value]
        return None if None in parts else "[" + ",".join(parts) + "]"  # type: ignore[arg-type]
    if isinstance(value, dict):
        members = []
        for key in sorted(value, key=_utf16_order):
            if not isinstance(key, str):
                return None
            inner = _fast(value[key])
            if inner is None:
                return None
            members.append(_string(key) + ":" + inner)
        return "{" + ",".join(members) + "}"
    return None


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value."""
    text = _fast(value)
    if text is not None:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference implementation decide
    return bytes(rfc8785.dumps(value))
