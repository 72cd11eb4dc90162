"""The fast path reads request bodies with orjson (verifier.service.hotpath.read_json),
and must read every body exactly as the other routes do (requests.parse_json): the same
value, or the same MalformedRequest. Two verifiers must never disagree about one
document, and an attacker must not find a body one reader takes and the other refuses
(a member named twice, a number beyond 64 bits, a lone surrogate, a BOM)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.samples import business_licence
from verifier.service.errors import MalformedRequest
from verifier.service.hotpath import read_json
from verifier.service.requests import MAX_JSON_DEPTH, parse_json


def outcome(reader, body: bytes) -> tuple[str, object]:
    try:
        value = reader(body)
    except MalformedRequest as exc:
        return "refused", str(exc)
    # Compared as JSON text too: 1 and 1.0 and True are equal in Python, not on the wire.
    return "read", (value, json.dumps(value, sort_keys=True))


def assert_read_alike(body: bytes) -> None:
    assert outcome(read_json, body) == outcome(parse_json, body), body


ATTACKS = {
    "a member named twice": b'{"qr": "EL1:x", "qr": "EL1:y"}',
    "a member named twice, deep": b'{"document": {"fields": {"a": "1", "a": "2"}}}',
    "a name repeated in an escape": b'{"qr": "a", "\\u0071r": "b"}',
    "a colon escaped in a string": b'{"purpose": "a\\u003ab", "qr": "x"}',
    "a colon escaped in capitals": b'{"purpose": "a\\u003Ab", "qr": "x"}',
    "colons in strings and names": b'{"a:b": "c:d", "e": ":::"}',
    "an integer of 65 bits": b'{"document": {"anchor": {"chainId": 36893488147419103232}}}',
    "an integer of 64 bits": b'{"n": 18446744073709551615}',
    "a negative integer beyond 64 bits": b'{"n": -9223372036854775809}',
    "a float": b'{"n": 1.5}',
    "an integer written as a float": b'{"n": 1e3}',
    "a number of 101 digits": b'{"n": 1' + b"0" * 100 + b"}",
    "a float of 101 characters": b'{"n": 1.' + b"0" * 99 + b"}",
    "an infinite number": b'{"n": 1e999}',
    "NaN": b'{"n": NaN}',
    "Infinity": b'{"n": -Infinity}',
    "a lone high surrogate": b'{"purpose": "\\ud800"}',
    "a lone low surrogate": b'{"purpose": "\\udc00x"}',
    "a lone surrogate as a name": b'{"\\ud800": 1}',
    "a surrogate pair": b'{"purpose": "\\ud83d\\ude00"}',
    "a surrogate in UTF-8 bytes": b'{"purpose": "\xed\xa0\x80"}',
    "bytes that are not UTF-8": b'{"purpose": "\xff"}',
    "a byte order mark": b'\xef\xbb\xbf{"qr": "x"}',
    "nothing": b"",
    "not JSON": b"{",
    "trailing content": b'{"qr": "x"} {}',
    "a control character in a string": b'{"purpose": "a\x01b"}',
    "nesting at the limit": b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH,
    "nesting over the limit": b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    "brackets in strings": b'{"a": "' + b"[" * 100 + b'"}',
    "a bare string": b'"EL1:x"',
    "null": b"null",
    "a list of objects named twice": b'[{"a": 1}, {"a": 2, "a": 3}]',
    "whitespace around": b' \t\r\n{"qr" : "x"}\n',
}


@pytest.mark.parametrize("body", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_fast_path_reads_every_attack_as_the_other_routes_do(body):
    assert_read_alike(body)


def test_a_member_named_twice_is_refused_with_its_name():
    with pytest.raises(MalformedRequest, match="'qr' appears twice"):
        read_json(ATTACKS["a member named twice"])


def test_an_integer_beyond_64_bits_is_read_exactly():
    value = read_json(ATTACKS["an integer of 65 bits"])
    assert value == {"document": {"anchor": {"chainId": 2**65}}}


def test_a_full_licence_document_is_read_as_the_other_routes_read_it():
    # The shape of a licence document (docs/format.md), with text of every kind it holds.
    document = {
        "format": "elicence/1",
        "hashSuite": "sha256-128",
        "type": "business-licence",
        "fields": {**business_licence(3), "note": "时间 12:30, URL https://x.example:8443/"},
        "secret": "0x" + "ab" * 16,
        "anchor": {
            "chainId": 131277322940537,
            "registry": "0x" + "12" * 20,
            "root": "0x" + "cd" * 16,
            "proof": ["0x" + "ef" * 16, "0x" + "01" * 16],
        },
    }
    for ascii_only in (True, False):
        body = json.dumps({"document": document, "purpose": "窗口核验"}, ensure_ascii=ascii_only)
        assert_read_alike(body.encode())
        assert read_json(body.encode()) == {"document": document, "purpose": "窗口核验"}


def test_a_presentation_is_read_as_the_other_routes_read_it():
    assert_read_alike(b'{"qr": "EL1:ABC:DEF", "purpose": "case 12:30"}')


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from(':"\\{}[],aé字\x01\ud800'), max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.sampled_from(':"ab\\'), max_size=3), inner, max_size=4
        )
    ),
    max_leaves=12,
)


def _written(value: object, duplicate: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=True)
    if duplicate and text.startswith("{") and len(text) > 2:
        # The first member again, at the end.
        first = json.dumps(value, ensure_ascii=True)[1:].split(",", 1)[0].rstrip("}")
        text = text[:-1] + ", " + first + "}"
    return text.encode()


@settings(max_examples=1_500, deadline=None)
@given(JSON_VALUES, st.booleans(), st.sampled_from([b"", b" ", b"\xef\xbb\xbf"]))
def test_any_json_body_is_read_alike_by_both_readers(value, duplicate, prefix):
    if isinstance(value, float) and not math.isfinite(value):
        return
    assert_read_alike(prefix + _written(value, duplicate))


@settings(max_examples=1_500, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_are_read_alike_by_both_readers(body):
    assert_read_alike(body)
