"""Write the licence format's shared test vectors (tests/vectors/*.json).

Every input is fixed (secrets, salts, leaves), so running it again writes the same files;
it is run by hand after a deliberate change of the format, never by the tests. The
vectors are for any implementation of elicence/1: tests/licence/test_vectors.py checks
the Python one against them, and the web page's JS and the C encoder can read the same
files. Bytes are written as 0x-prefixed lower-case hex, text as JSON strings.

    canonical.json    JSON values and their RFC 8785 bytes (as UTF-8 text and as hex)
    commitments.json  licences: secret -> salt of each field -> commitment -> licence id
    merkle.json       trees of 1, 2, 3 and 5 leaves: root and every leaf's proof
    payload.json      EL1: payloads (a full licence, a presentation) and their documents
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from licence.canonical import canonical_json  # noqa: E402  (needs the repository on sys.path)
from licence.catalogue import catalogue  # noqa: E402
from licence.digest import DEFAULT_SUITE, commitment, derive_salts, leaf_hash  # noqa: E402
from licence.document import AnchorRef, LicenceDocument  # noqa: E402
from licence.merkle import build_tree  # noqa: E402
from licence.payload import encode_payload  # noqa: E402
from licence.presentation import present  # noqa: E402

OUT = REPO / "tests" / "vectors"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

BUSINESS_FIELDS = {
    "licenceNumber": "110108000000000007",
    "holderName": "北京海淀第7号科技有限公司",
    "unifiedSocialCreditCode": "91110108551385082Q",
    "legalRepresentative": "张三",
    "registeredAddress": "北京市海淀区中关村大街8号",
    "businessScope": '技术服务；软件开发 "quoted" back\\slash',
    "registeredCapital": "100万元人民币",
    "dateOfEstablishment": "2020-05-18",
    "validFrom": "2020-05-18",
    "validUntil": "2040-05-17",
    "issuingAuthority": "北京市海淀区市场监督管理局",
}
FOOD_FIELDS = {  # dailySupervisingAuthority absent: an optional field left out
    "licenceNumber": "JY21101080000003",
    "holderName": "北京海淀第3号餐饮店 𝄞",
    "unifiedSocialCreditCode": "914403001922038216",
    "legalRepresentative": "李四",
    "residence": "北京市海淀区学院路1号",
    "businessPremises": "北京市海淀区学院路1号一层",
    "mainBusinessFormat": "餐饮服务经营者（小型餐馆）",
    "businessItems": "热食类食品制售\n冷食类食品制售",
    "validFrom": "2024-01-01",
    "validUntil": "2029-12-31",
    "issuingAuthority": "北京市海淀区市场监督管理局",
}


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


# Said in the files themselves, so that nobody takes a vector's secret for a real one.
FIXTURE_NOTE = (
    " Test fixtures: every secret is SHA-256('elicence vector secret ' + label)[:16],"
    " made up for these vectors; no real licence or key."
)


def _secret(label: str) -> bytes:
    return hashlib.sha256(b"elicence vector secret " + label.encode()).digest()[:16]


def _leaf(index: int) -> bytes:
    return hashlib.sha256(b"elicence vector leaf %d" % index).digest()[:16]


def commitments() -> dict[str, Any]:
    cases = []
    for type_id, fields in (
        ("business-licence", BUSINESS_FIELDS),
        ("food-business-licence", FOOD_FIELDS),
    ):
        secret = _secret(type_id)
        salts = dict(zip(fields, derive_salts(secret, list(fields)), strict=True))
        made = {name: commitment(name, value, salts[name]) for name, value in fields.items()}
        cases.append(
            {
                "type": type_id,
                "hashSuite": DEFAULT_SUITE,
                "secret": _hex(secret),
                "fields": fields,
                "salts": {name: _hex(s) for name, s in salts.items()},
                "commitments": {name: _hex(c) for name, c in made.items()},
                "licenceId": _hex(leaf_hash(type_id, made)),
            }
        )
    return {
        "description": "salt = HMAC-SHA256(secret, name)[:16]; see docs/format.md." + FIXTURE_NOTE,
        "cases": cases,
    }


def merkle() -> dict[str, Any]:
    cases = []
    for count in (1, 2, 3, 5):
        tree = build_tree([_leaf(i) for i in range(count)])
        cases.append(
            {
                "leaves": [_hex(leaf) for leaf in tree.leaves],
                "root": _hex(tree.root),
                "proofs": [[_hex(p) for p in tree.proof(i)] for i in range(count)],
            }
        )
    return {
        "description": "node = H(0x01 || min(a, b) || max(a, b)); see docs/format.md",
        "cases": cases,
    }


def _full_document() -> LicenceDocument:
    business = catalogue().get("business-licence")
    secret = _secret("payload")
    provisional = LicenceDocument(
        business, dict(BUSINESS_FIELDS), AnchorRef(1, REGISTRY, b"", ()), secret=secret
    )
    tree = build_tree([provisional.licence_id, _leaf(1), _leaf(2)])
    anchor = AnchorRef(31337, REGISTRY, tree.root, tuple(tree.proof(0)))
    return LicenceDocument(business, dict(BUSINESS_FIELDS), anchor, secret=secret)


def payload() -> dict[str, Any]:
    full = _full_document()
    shown = present(full, ["registeredCapital"])
    cases = [
        {
            "name": name,
            "payload": encode_payload(document),
            "document": document.to_json(),
            "licenceId": _hex(document.licence_id),
            "root": _hex(document.computed_root()),
        }
        for name, document in (("full licence", full), ("presentation", shown))
    ]
    return {
        "description": 'payload = "EL1:" || Base45(zlib(CBOR(P))); see docs/format.md.'
        + FIXTURE_NOTE,
        "cases": cases,
    }


def canonical() -> dict[str, Any]:
    full = _full_document()
    values: list[tuple[str, Any]] = [
        ("keys sorted at every depth", {"b": ["z", "a"], "a": {"d": "1", "c": "2"}}),
        (
            "keys in UTF-16 order",
            {"\u20ac": "euro", "\r": "cr", "\U0001d11e": "clef", "\uffff": "max"},
        ),
        ("escapes", ["a\nb\tc", 'q"\\', "\x01\x1f", "\u2028", "名称"]),
        (
            "integers and literals",
            {"chainId": 31337, "none": None, "yes": True, "empty": [], "obj": {}},
        ),
        ("a full document", full.to_json()),
        ("a presentation", present(full, []).to_json()),
    ]
    cases = []
    for name, value in values:
        data = canonical_json(value)
        cases.append(
            {
                "name": name,
                "value": value,
                "canonical": data.decode("utf-8"),
                "canonicalHex": _hex(data),
            }
        )
    return {"description": "RFC 8785 (JCS) bytes of JSON values", "cases": cases}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in (
        ("canonical", canonical),
        ("commitments", commitments),
        ("merkle", merkle),
        ("payload", payload),
    ):
        text = json.dumps(make(), ensure_ascii=False, indent=2) + "\n"
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"wrote tests/vectors/{name}.json")


if __name__ == "__main__":
    main()
