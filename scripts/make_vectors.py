"""Write the licence format's shared test vectors (tests/vectors/*.json).

Every input is fixed (secrets, salts, leaves), so running it again writes the same files;
it is run by hand after a deliberate change of the format, never by the tests. The
vectors are for any implementation of elicence/1: tests/licence/test_vectors.py checks
the Python one against them, and the web page's JS and the C encoder can read the same
files. Bytes are written as 0x-prefixed lower-case hex, text as JSON strings.

    canonical.json    JSON values and their RFC 8785 bytes (as UTF-8 text and as hex)
    hashes.json       each suite's whole hash and HMAC on published examples (GB/T 32905's
                      for SM3, FIPS 180-2's and RFC 4231's for SHA-256), before truncation
    commitments.json  licences: secret -> salt of each field -> commitment -> licence id
    merkle.json       trees of 1, 2, 3 and 5 leaves: root and every leaf's proof
    payload.json      EL2: payloads (a full licence, a presentation) and their documents,
                      unsealed (6 items) and sealed (7 items, the seal of seal.json), with
                      the chain id and registry they are read with; the same as EL1:
                      payloads (8 and 9 items), which readers still read
    seal.json         agency seals (SM2, licence/seal.py): key pair, message, seal

The last three have cases in each hash suite (`hashSuite`: sha256-128, sm3-128).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from licence import seal as sm2_seal  # noqa: E402
from licence.canonical import canonical_json  # noqa: E402  (needs the repository on sys.path)
from licence.catalogue import catalogue  # noqa: E402
from licence.digest import (  # noqa: E402
    DEFAULT_SUITE,
    SM3_SUITE,
    commitment,
    derive_salts,
    leaf_hash,
)
from licence.document import AnchorRef, LicenceDocument  # noqa: E402
from licence.merkle import build_tree  # noqa: E402
from licence.payload import encode_payload  # noqa: E402
from licence.presentation import present  # noqa: E402

OUT = REPO / "tests" / "vectors"
SUITES = (DEFAULT_SUITE, SM3_SUITE)
# The whole hash of each suite, by hashlib's name for it.
HASH_NAMES = {DEFAULT_SUITE: "sha256", SM3_SUITE: "sm3"}
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


# Published examples: both messages are GB/T 32905-2016's (appendix A) for SM3, "abc" is
# FIPS 180-2's (appendix B.1) for SHA-256, and the key and message of RFC 4231's test
# case 2 give its HMAC-SHA-256. The other cases (HMAC-SM3 has no published example) are
# OpenSSL's, which the web page's independent SM3 (sm-crypto) must match.
_HASH_MESSAGES = (("abc", b"abc"), ("abcd x 16 (64 bytes)", b"abcd" * 16))
_HMAC_CASES = (("RFC 4231 case 2", b"Jefe", b"what do ya want for nothing?"),)


def hashes() -> dict[str, Any]:
    cases = []
    for suite in SUITES:
        name = HASH_NAMES[suite]
        for label, message in _HASH_MESSAGES:
            cases.append(
                {
                    "hashSuite": suite,
                    "name": label,
                    "messageHex": _hex(message),
                    "hash": _hex(hashlib.new(name, message).digest()),
                }
            )
        for label, key, message in _HMAC_CASES:
            cases.append(
                {
                    "hashSuite": suite,
                    "name": "HMAC, key and message of " + label,
                    "keyHex": _hex(key),
                    "messageHex": _hex(message),
                    "hmac": _hex(hmac.digest(key, message, name)),
                }
            )
    return {
        "description": "each suite's 256-bit hash H* and HMAC-H* before truncation to 16 "
        "bytes, on the examples of GB/T 32905-2016 appendix A (SM3), FIPS 180-2 appendix B.1 "
        "and RFC 4231 case 2 (SHA-256)",
        "cases": cases,
    }


def commitments() -> dict[str, Any]:
    cases = []
    for suite in SUITES:
        for type_id, fields in (
            ("business-licence", BUSINESS_FIELDS),
            ("food-business-licence", FOOD_FIELDS),
        ):
            secret = _secret(type_id)  # the same secret in both suites
            salts = dict(zip(fields, derive_salts(secret, list(fields), suite), strict=True))
            made = {n: commitment(n, v, salts[n], suite) for n, v in fields.items()}
            cases.append(
                {
                    "type": type_id,
                    "hashSuite": suite,
                    "secret": _hex(secret),
                    "fields": fields,
                    "salts": {name: _hex(s) for name, s in salts.items()},
                    "commitments": {name: _hex(c) for name, c in made.items()},
                    "licenceId": _hex(leaf_hash(type_id, made, suite)),
                }
            )
    return {
        "description": "salt = HMAC-H*(secret, name)[:16] with H* SHA-256 or SM3 (hashSuite);"
        " see docs/format.md." + FIXTURE_NOTE,
        "cases": cases,
    }


def merkle() -> dict[str, Any]:
    cases = []
    for suite in SUITES:
        for count in (1, 2, 3, 5):
            tree = build_tree([_leaf(i) for i in range(count)], suite)
            cases.append(
                {
                    "hashSuite": suite,
                    "leaves": [_hex(leaf) for leaf in tree.leaves],
                    "root": _hex(tree.root),
                    "proofs": [[_hex(p) for p in tree.proof(i)] for i in range(count)],
                }
            )
    return {
        "description": "node = H(0x01 || min(a, b) || max(a, b)); see docs/format.md",
        "cases": cases,
    }


# The seal vectors' key, made up for them: SHA-256 of a label, below the curve order.
SEAL_KEY = hashlib.sha256(b"elicence vector seal key").digest()
CHAIN_ID = 31337


def _seal(root: bytes) -> bytes:
    """The vectors' seal of `root`: the one seal.json already holds when it verifies, else
    a new one. SM2 signing draws a random nonce, so a seal is made once and kept, and
    running this again writes the same files."""
    message = sm2_seal.seal_message(CHAIN_ID, bytes.fromhex(REGISTRY[2:]), root)
    public = sm2_seal.public_key(SEAL_KEY)
    try:
        kept = json.loads((OUT / "seal.json").read_text(encoding="utf-8"))["cases"]
    except (OSError, ValueError, KeyError):
        kept = []
    for case in kept:
        if case.get("message") == _hex(message):
            found = bytes.fromhex(case["seal"][2:])
            try:
                sm2_seal.verify(public, message, found)
            except sm2_seal.SealError:
                break
            return found
    return sm2_seal.sign(SEAL_KEY, message)


def _full_document(suite: str = DEFAULT_SUITE) -> LicenceDocument:
    business = catalogue().get("business-licence")
    secret = _secret("payload")
    provisional = LicenceDocument(
        business, dict(BUSINESS_FIELDS), AnchorRef(1, REGISTRY, b"", ()), suite, secret=secret
    )
    tree = build_tree([provisional.licence_id, _leaf(1), _leaf(2)], suite)
    anchor = AnchorRef(31337, REGISTRY, tree.root, tuple(tree.proof(0)))
    return LicenceDocument(business, dict(BUSINESS_FIELDS), anchor, suite, secret=secret)


def payload() -> dict[str, Any]:
    cases = []
    for layout in (2, 1):
        for suite in SUITES:
            full = _full_document(suite)
            shown = present(full, ["registeredCapital"])
            sealed = _sealed(full)
            # The first suite's cases keep the names they had before there was a second,
            # the unsealed ones those they had before seals, and the EL1: ones say so.
            tag = "" if suite == DEFAULT_SUITE else f" ({suite})"
            tag += "" if layout == 2 else " (EL1:)"
            cases += [
                {
                    "name": name + tag,
                    "payload": encode_payload(document, layout=layout),
                    # What the payload is read with: an EL2: payload names no chain or
                    # registry (the verifier's own); an EL1: payload carries these.
                    "chainId": document.anchor.chain_id,
                    "registry": document.anchor.registry,
                    "document": document.to_json(),
                    "licenceId": _hex(document.licence_id),
                    "root": _hex(document.computed_root()),
                }
                for name, document in (
                    ("full licence", full),
                    ("presentation", shown),
                    ("sealed full licence", sealed),
                    ("sealed presentation", present(sealed, ["registeredCapital"])),
                )
            ]
    return {
        "description": 'payload = "EL2:" || Base45(raw DEFLATE with the preset dictionary '
        "licence/payload_dictionary.txt (RFC 1951, no zlib header or Adler-32) of CBOR(P)), "
        'read with chainId and registry; the (EL1:) cases are "EL1:" || Base45(zlib(CBOR(P1))),'
        " which readers still read; see docs/format.md." + FIXTURE_NOTE,
        "cases": cases,
    }


def _sealed(document: LicenceDocument) -> LicenceDocument:
    anchor = document.anchor
    sealed = AnchorRef(
        anchor.chain_id, anchor.registry, anchor.root, anchor.proof, _seal(anchor.root)
    )
    return LicenceDocument(
        document.licence_type, document.fields, sealed, document.suite, secret=document.secret
    )


def seal() -> dict[str, Any]:
    public = sm2_seal.public_key(SEAL_KEY)
    cases = []
    for suite in SUITES:
        root = _full_document(suite).anchor.root
        message = sm2_seal.seal_message(CHAIN_ID, bytes.fromhex(REGISTRY[2:]), root)
        cases.append(
            {
                "name": f"the root of the payload vectors ({suite})",
                "privateKey": _hex(SEAL_KEY),
                "publicKey": _hex(public),
                "chainId": CHAIN_ID,
                "registry": REGISTRY,
                "root": _hex(root),
                "message": _hex(message),
                "seal": _hex(_seal(root)),
            }
        )
    return {
        "description": "seal = SM2 signature r || s (GB/T 32918.2, SM3, identifier "
        "1234567812345678) of message = 'elicence/1 seal' || chainId (8 bytes) || registry "
        "(20) || root (16); see docs/format.md, 'Agency seal'. SM2 signatures are "
        "randomised: a verifier checks these, an implementation's own seals differ. The key "
        "is SHA-256('elicence vector seal key'): a test fixture made up for these vectors, "
        "never any agency's key.",
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


# The web page's copy of the payload dictionary (a module, so that the page needs no
# request for it and the offline page's service worker caches it with the code).
PAGE_DICTIONARY = REPO / "verifier" / "web" / "static" / "js" / "payload-dictionary.js"


def page_dictionary() -> str:
    text = (REPO / "licence" / "payload_dictionary.txt").read_bytes().decode("utf-8")
    return (
        "// Written by scripts/make_vectors.py from licence/payload_dictionary.txt, the EL2:\n"
        "// payload's preset deflate dictionary (docs/format.md): its UTF-8 bytes are the\n"
        "// file's (tests/web/test_js_vectors.py). Do not edit by hand.\n"
        f"export const PAYLOAD_DICTIONARY = {json.dumps(text, ensure_ascii=False)};\n"
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    PAGE_DICTIONARY.write_text(page_dictionary(), encoding="utf-8")
    print(f"wrote {PAGE_DICTIONARY.relative_to(REPO)}")
    for name, make in (
        ("canonical", canonical),
        ("hashes", hashes),
        ("commitments", commitments),
        ("merkle", merkle),
        ("seal", seal),
        ("payload", payload),
    ):
        text = json.dumps(make(), ensure_ascii=False, indent=2) + "\n"
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"wrote tests/vectors/{name}.json")


if __name__ == "__main__":
    main()
