"""The verify page's offline verifier (verifier/web/static/js/offline.js) gives the verdict
the service gives (verifier.checks.verify over a TrustSnapshot) for the same licence and
the same trust snapshot: the same status, checks, outcomes and reason codes, for full
documents, presentations and EL1: payloads of both hash suites, sealed and not, and of a
second version of a type published on chain; and it refuses an altered snapshot with the
service's refusal code.

The JavaScript runs under Node (tests/web/offline_node.mjs) with the globals the page
gives it: WebCrypto, the vendored sm-crypto and pako loaded as classic scripts, and no
service: the licence types are the snapshot's (the definitions published in the
registry). Everything is made here by the Python code: the registry on an in-process
chain, the types published in it, the batches (sealed with SM2 by licence.seal), the
statuses, the index and the snapshot (co-signed with SM2).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import base45
import cbor2
import orjson
import pytest

from issuer.batch import wrap_batch
from ledger.chain import connect
from ledger.index import RegistryIndex
from ledger.registry import Registry
from licence import seal
from licence.catalogue import catalogue
from licence.catalogue_rules import parse_definition
from licence.document import LicenceDocument, loads_document, parse_document
from licence.errors import DocumentError, PayloadError, UnsupportedHashSuite
from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    AGENCY_TYPES,
    OTHER_AGENCY_CODE,
    OTHER_AGENCY_NAME,
    OTHER_AGENCY_TYPES,
    _funded,
    publish_types,
)
from tests.samples import business_licence, with_remarks
from verifier.chain_source import RegistrySource
from verifier.checks import CHINA, verify
from verifier.errors import TypeUnavailable
from verifier.trust_snapshot import (
    SnapshotRefused,
    body_digest,
    export_snapshot,
    load_snapshot,
    sign_body,
)
from verifier.type_loading import TypeLoader, parse_loading

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "verifier" / "web" / "static"
RUNNER = Path(__file__).with_name("offline_node.mjs")
SUITES = ("sha256-128", "sm3-128")
FORMS = ("json", "presentation", "el2", "el2-presentation", "el1", "el1-presentation")
# An EL1: payload names no type version (it is version 1): a licence of another version,
# or one that names another version than its batch's, is shown as JSON or EL2: only.
V2_FORMS = ("json", "presentation", "el2", "el2-presentation")
# Version 2 of the business licence, published on chain only: the page has it from the
# snapshot alone, and the service loads it from there (verifier.type_loading).
BUSINESS_V2 = parse_definition(with_remarks("business-licence"))


@dataclass
class Case:
    name: str
    document: LicenceDocument
    forms: tuple[str, ...] = FORMS


def _flip(hex_text: str, position: int) -> str:
    return (
        hex_text[:position] + ("0" if hex_text[position] != "0" else "1") + hex_text[position + 1 :]
    )


def _changed(document: LicenceDocument, change) -> LicenceDocument:
    raw = orjson.loads(document.to_bytes())
    change(raw)
    return parse_document(raw)


def _forms(document: LicenceDocument, forms: tuple[str, ...]) -> dict[str, str]:
    shown = present(document, [])
    made = {
        "json": lambda: document.to_bytes().decode("utf-8"),
        "presentation": lambda: shown.to_bytes().decode("utf-8"),
        "el2": lambda: encode_payload(document),
        "el2-presentation": lambda: encode_payload(shown),
        "el1": lambda: encode_payload(document, layout=1),
        "el1-presentation": lambda: encode_payload(shown, layout=1),
    }
    return {form: made[form]() for form in forms}


def _build_world(tmp: Path) -> dict[str, Any]:
    """A registry with every verdict the snapshot must reproduce, in both suites, its
    snapshot, the Python verdicts and the Node runner's results."""
    chain = connect("embedded")
    governor = _funded(chain, "governor")
    agency = _funded(chain, "agency")
    other = _funded(chain, "other-agency")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor)
    registry.publish_licence_type(governor, BUSINESS_V2)
    catalogue().add(BUSINESS_V2)  # to issue it (the run fixture takes it away again)
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, AGENCY_TYPES)
    registry.register_agency(
        governor, OTHER_AGENCY_CODE, OTHER_AGENCY_NAME, other.address, OTHER_AGENCY_TYPES
    )
    licence_type = catalogue().get("business-licence", 1)
    registry_bytes = bytes.fromhex(registry.address[2:])

    def issue(rows, suite, by, seal_key=None, of_type=licence_type):
        sealer = None
        if seal_key is not None:

            def sealer(root: bytes) -> bytes:
                return seal.seal_root(seal_key, chain.chain_id, registry_bytes, root)

        batch = wrap_batch(
            of_type,
            rows,
            chain_id=chain.chain_id,
            registry=registry.address,
            suite=suite,
            sealer=sealer,
        )
        registry.anchor(
            by, batch.root, of_type.code, len(batch.documents), type_version=of_type.version
        )
        return batch

    cases: list[Case] = []
    # Before any seal key: unsealed batches (seal.not-required once seals are checked).
    for n, suite in enumerate(SUITES):
        base = 10 * n
        batch = issue(
            [
                business_licence(base),
                business_licence(base + 1),
                business_licence(base + 2),
                business_licence(base + 3, validFrom="2010-01-01", validUntil="2015-12-31"),
            ],
            suite,
            agency,
        )
        renewed = issue(
            [business_licence(base + 2, registeredCapital="500万元人民币")], suite, agency
        )
        registry.revoke(agency, batch.root, batch.documents[1].licence_id, Reason.FRAUD)
        registry.supersede(
            agency,
            batch.root,
            batch.documents[2].licence_id,
            renewed.documents[0].licence_id,
            Reason.CHANGE_OF_PARTICULARS,
        )
        posing = issue([business_licence(base + 4)], suite, other)
        valid = batch.documents[0]
        # A suspension, a cancellation, and a batch revoked whole by the governor over a
        # suspension (not final: the batch's revocation wins) and a cancellation (final).
        changed = issue([business_licence(base + 8), business_licence(base + 9)], suite, agency)
        registry.suspend(
            agency, changed.root, changed.documents[0].licence_id, Reason.UNDER_INVESTIGATION
        )
        registry.cancel(
            agency, changed.root, changed.documents[1].licence_id, Reason.HOLDER_REQUEST
        )
        whole = issue([business_licence(base + 10 + k) for k in range(3)], suite, agency)
        registry.suspend(
            agency, whole.root, whole.documents[0].licence_id, Reason.UNDER_INVESTIGATION
        )
        registry.cancel(agency, whole.root, whole.documents[1].licence_id, Reason.HOLDER_REQUEST)
        registry.revoke_batch(governor, whole.root, Reason.ISSUED_IN_ERROR)

        def other_holder(raw):
            raw["fields"]["holderName"] = "别的公司"

        def other_proof(raw):
            raw["anchor"]["proof"][0] = _flip(raw["anchor"]["proof"][0], 33)

        def add_seal(raw):
            raw["anchor"]["seal"] = "0x" + "ab" * 64

        def broken_code(raw):
            raw["fields"]["unifiedSocialCreditCode"] = _flip(
                raw["fields"]["unifiedSocialCreditCode"], 17
            )

        cases += [
            Case(f"{suite} VALID", valid),
            Case(f"{suite} TAMPERED field", _changed(valid, other_holder)),
            Case(f"{suite} TAMPERED proof", _changed(valid, other_proof)),
            Case(f"{suite} TAMPERED credit code", _changed(valid, broken_code)),
            Case(f"{suite} REVOKED", batch.documents[1]),
            Case(f"{suite} SUPERSEDED", batch.documents[2]),
            Case(f"{suite} EXPIRED", batch.documents[3]),
            Case(f"{suite} ISSUER_NOT_AUTHORISED other authority", posing.documents[0]),
            Case(f"{suite} SUSPENDED", changed.documents[0]),
            Case(f"{suite} CANCELLED", changed.documents[1]),
            Case(f"{suite} REVOKED with its batch over a suspension", whole.documents[0]),
            Case(f"{suite} CANCELLED before its batch was revoked", whole.documents[1]),
            Case(f"{suite} REVOKED with its batch", whole.documents[2]),
            Case(f"{suite} TAMPERED seal unexpected", _changed(valid, add_seal)),
        ]
        # Version 2, published on chain only, and a v1 licence claiming version 2 (which
        # only adds an optional field: its hashes still agree, the anchor's version not).
        second = issue(
            [business_licence(base + 20, remarks="二〇二六年换发"), business_licence(base + 21)],
            suite,
            agency,
            of_type=BUSINESS_V2,
        )
        cases += [
            Case(f"{suite} VALID version 2", second.documents[0], V2_FORMS),
            Case(f"{suite} VALID version 2 without the new field", second.documents[1], V2_FORMS),
            Case(
                f"{suite} TAMPERED type version",
                _changed(valid, lambda raw: raw.update(typeVersion=2)),
                V2_FORMS,
            ),
        ]

    # Seal keys from the next block on, for both agencies.
    agency_seal = seal.new_private_key()
    other_seal = seal.new_private_key()
    registry.register_seal_key(governor, 1, seal.public_key(agency_seal), chain.block_number() + 1)
    registry.register_seal_key(governor, 2, seal.public_key(other_seal), chain.block_number() + 1)
    seal_compromised: list[int] = []
    for n, suite in enumerate(SUITES):
        base = 10 * n
        sealed = issue([business_licence(base + 5)], suite, agency, agency_seal)
        other_name = {"issuingAuthority": OTHER_AGENCY_NAME}
        leaked = issue([business_licence(base + 6, **other_name)], suite, other, other_seal)
        seal_compromised.append(registry.anchor_of(leaked.root).block_number)
        document = sealed.documents[0]

        def wrong_seal(raw):
            raw["anchor"]["seal"] = _flip(raw["anchor"]["seal"], 40)

        def no_seal(raw):
            del raw["anchor"]["seal"]

        cases += [
            Case(f"{suite} VALID sealed", document),
            Case(f"{suite} TAMPERED seal", _changed(document, wrong_seal)),
            Case(f"{suite} TAMPERED seal missing", _changed(document, no_seal)),
            Case(f"{suite} ISSUER_NOT_AUTHORISED seal key compromised", leaked.documents[0]),
        ]
    registry.mark_seal_key_compromised(governor, 2, 1, min(seal_compromised))
    # Agency 2's chain key reported compromised from its next anchor on.
    late = []
    for n, suite in enumerate(SUITES):
        other_name = {"issuingAuthority": OTHER_AGENCY_NAME}
        late.append(issue([business_licence(10 * n + 7, **other_name)], suite, other, other_seal))
    first_late = min(registry.anchor_of(b.root).block_number for b in late)
    registry.mark_signer_compromised(governor, other.address, first_late)
    for suite, batch in zip(SUITES, late, strict=True):
        cases.append(Case(f"{suite} ISSUER_NOT_AUTHORISED key compromised", batch.documents[0]))

    index_path = tmp / "index.sqlite"
    index = RegistryIndex(index_path, registry)
    index.sync()
    index.close()
    governor_sm2 = seal.new_private_key()
    governor_sm2_public = seal.public_key(governor_sm2).hex()
    snapshot_path = tmp / "trust.snapshot"
    export_snapshot(index_path, registry, governor, snapshot_path, seal_key=governor_sm2)

    anchor = {
        "chainId": chain.chain_id,
        "registry": registry.address,
        "governor": governor.address,
        "governorSealKey": governor_sm2_public,
    }
    python_options: dict[str, Any] = {
        "governors": [governor.address],
        "registry": registry.address,
        "chain_id": chain.chain_id,
        "governor_seal_key": bytes.fromhex(governor_sm2_public),
    }
    snapshot = load_snapshot(snapshot_path, **python_options)

    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(CHINA).date()
    python = {}
    texts = []
    on_chain = {}
    chain_source = RegistrySource(registry)
    # The service holds the shipped catalogue only: version 2 it loads from the snapshot.
    _drop_version_2()
    for case in cases:
        for form, text in _forms(case.document, case.forms).items():
            name = f"{case.name} / {form}"
            # The service's own reading of the same text.
            read = _read(text, snapshot)
            python[name] = verify(read, snapshot, today=today).to_json()
            on_chain[name] = verify(read, chain_source, today=today).to_json()
            texts.append({"name": name, "snapshot": "good", "text": text, "now": now.isoformat()})

    # Texts the service refuses or reads in its own strict way: the page must agree.
    outcomes = {}
    for name, text in _odd_texts(cases).items():
        outcomes[name] = _python_outcome(text, snapshot, today)
        texts.append({"name": name, "snapshot": "good", "text": text, "now": now.isoformat()})
    # A snapshot whose business licence definition, re-signed, is not the canonical text
    # the registry's hash is of: neither reads a licence by it (type.unavailable).
    crooked = _rewrite(snapshot_path, tmp / "crooked.snapshot", _crooked(governor, governor_sm2))
    crooked_snapshot = load_snapshot(crooked, **python_options)
    for case in cases[:1]:
        for form, text in _forms(case.document, FORMS).items():
            name = f"{case.name} / {form} / crooked definition"
            outcomes[name] = _python_outcome(text, crooked_snapshot, today)
            texts.append(
                {"name": name, "snapshot": "crooked", "text": text, "now": now.isoformat()}
            )

    eight_days_on = dt.datetime.fromtimestamp(snapshot.body["blockTime"], dt.UTC) + dt.timedelta(
        days=8
    )
    texts.append(
        {
            "name": "sha256-128 VALID stale / json",
            "snapshot": "good",
            "text": cases[0].document.to_bytes().decode("utf-8"),
            "now": eight_days_on.isoformat(),
        }
    )

    snapshots = [
        {"name": "good", "path": str(snapshot_path), "anchor": anchor},
        {"name": "crooked", "path": str(crooked), "anchor": anchor},
    ]
    refusals = _altered_snapshots(tmp, snapshot_path, anchor, python_options, governor.address)
    # Re-signed by the governor with text that JSON escapes in every way it can: the
    # page must write the same canonical JSON for the digest, so it is accepted.
    odd = _rewrite(snapshot_path, tmp / "odd.snapshot", _odd_names(governor, governor_sm2))
    load_snapshot(odd, **python_options)
    refusals["odd names, re-signed"] = (odd, anchor, "accepted")
    # A definition changed and signed again, its stated hash left: what an exporter that
    # misread its index would sign. The signature holds; the definition does not.
    misread = _rewrite(
        snapshot_path, tmp / "misread.snapshot", _misread_definition(governor, governor_sm2)
    )
    refusals["definition re-signed"] = (misread, anchor, _python_code(misread, python_options))
    snapshots += [
        {"name": name, "path": str(path), "anchor": anchor_js}
        for name, (path, anchor_js, _) in refusals.items()
    ]
    job = tmp / "job.json"
    job.write_text(
        json.dumps(
            {
                "static": str(STATIC),
                "snapshots": snapshots,
                "cases": texts,
                "sm2": _sm2_vectors(),
            }
        ),
        "utf-8",
    )
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run the web page's offline verifier")
    ran = subprocess.run(
        [node, str(RUNNER), str(job)], capture_output=True, text=True, timeout=600, check=False
    )
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    return {
        "cases": {c.name: c for c in cases},
        "python": python,
        "js": result["verdicts"],
        "snapshots": result["snapshots"],
        "python_refusals": {name: code for name, (_, _, code) in refusals.items()},
        "snapshot": snapshot,
        "crooked": crooked_snapshot,
        "outcomes": outcomes,
        "on_chain": on_chain,
        "sm2": result["sm2"],
    }


def _drop_version_2() -> None:
    held = catalogue()
    held._install({k: v for k, v in held._by_key.items() if k != BUSINESS_V2.key})


def _read(text: str, snapshot) -> LicenceDocument:
    """The text as the service reads it, a type version it lacks loaded from the snapshot
    (as `elicence verify --snapshot` does), TypeUnavailable when the snapshot lacks it."""
    trimmed = text.lstrip("\ufeff").strip()

    def parse() -> LicenceDocument:
        # As the page asks the service: a document when the text starts with "{".
        if trimmed.startswith("{"):
            return loads_document(text)
        return decode_payload(
            trimmed, chain_id=snapshot.chain_id, registry=snapshot.registry_address
        )

    return parse_loading(parse, lambda: TypeLoader([snapshot]))


def _crooked(governor, seal_key: bytes):
    """The business licence's v1 definition indented (so not canonical), its stated hash
    made to match, re-signed: the signature and the hash hold, the definition is unusable."""

    def change(document: dict[str, Any]) -> None:
        body = document["body"]
        code = catalogue().get("business-licence").code
        for entry in body["licenceTypes"]:
            if (entry["code"], entry["version"]) == (code, 1):
                entry["definition"] = json.dumps(
                    json.loads(entry["definition"]), ensure_ascii=False, indent=1
                )
                entry["definitionHash"] = hashlib.sha256(entry["definition"].encode()).hexdigest()
        document["signatures"] = sign_body(body, body_digest(body), governor, seal_key)

    return change


def _relabelled(entry: dict[str, Any]) -> None:
    entry["definition"] = entry["definition"].replace("营业执照", "营业许可", 1)


def _misread_definition(governor, seal_key: bytes):
    def change(document: dict[str, Any]) -> None:
        body = document["body"]
        _relabelled(_business_entry(body))
        document["signatures"] = sign_body(body, body_digest(body), governor, seal_key)

    return change


def _business_entry(body: dict[str, Any]) -> dict[str, Any]:
    code = catalogue().get("business-licence").code
    return next(e for e in body["licenceTypes"] if (e["code"], e["version"]) == (code, 1))


def _python_code(path: Path, options: dict[str, Any]) -> str:
    try:
        load_snapshot(path, **options)
    except SnapshotRefused as exc:
        return exc.code
    return "accepted"


def _swap_case_of_registry(document: dict[str, Any]) -> None:
    # An EIP-55 address with every letter's case swapped has a wrong checksum.
    registry = document["anchor"]["registry"]
    document["anchor"]["registry"] = "0x" + registry[2:].swapcase()


# GB/T 32918.5-2017 Annex A (tests/licence/test_seal.py): the standard's example key pair's
# signature of "message digest" with the default identifier; then the same for another
# message, and a seal made here by OpenSSL (licence.seal) of a root.
_VECTOR_KEY = (
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
_VECTOR_SIGNATURE = (
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
)


def _sm2_vectors() -> list[dict[str, str]]:
    own_key = seal.new_private_key()
    own_message = seal.seal_message(1337, bytes(range(20)), bytes(range(16)))
    standard = {"publicKey": _VECTOR_KEY, "signature": _VECTOR_SIGNATURE}
    return [
        {**standard, "message": b"message digest".hex()},
        {**standard, "message": b"message digesT".hex()},
        {
            "publicKey": seal.public_key(own_key).hex(),
            "message": own_message.hex(),
            "signature": seal.sign(own_key, own_message).hex(),
        },
    ]


def test_the_pages_sm2_verifies_the_standards_example_and_openssls_seals(run):
    assert run["sm2"] == [True, False, True]


BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
MUTATIONS_PER_PAYLOAD = 60  # bounded: each is one Python and one JavaScript reading


def _odd_texts(cases: list[Case]) -> dict[str, str]:
    """Payloads with one character changed, and JSON documents that break one rule."""
    texts = {}
    for case in cases:
        if case.name.split(" ", 1)[1] not in ("VALID", "VALID sealed"):
            continue
        payload = encode_payload(case.document, layout=1)
        body = payload[4:]
        step = max(1, len(body) // MUTATIONS_PER_PAYLOAD)
        for position in range(0, len(body), step):
            old = body[position]
            new = BASE45[(BASE45.index(old) + 1 + position % 44) % 45]
            texts[f"{case.name} payload char {position}"] = (
                "EL1:" + body[:position] + new + body[position + 1 :]
            )
        texts[f"{case.name} payload cut"] = payload[:-3]
        el2 = encode_payload(case.document)
        el2_body = el2[4:]
        step = max(1, len(el2_body) // MUTATIONS_PER_PAYLOAD)
        for position in range(0, len(el2_body), step):
            old = el2_body[position]
            new = BASE45[(BASE45.index(old) + 1 + position % 44) % 45]
            texts[f"{case.name} EL2 payload char {position}"] = (
                "EL2:" + el2_body[:position] + new + el2_body[position + 1 :]
            )
        texts[f"{case.name} EL2 payload cut"] = el2[:-3]
        texts[f"{case.name} payload prefix"] = "EL3:" + body
        texts[f"{case.name} payload EL1 read as EL2"] = "EL2:" + body
        raw_text = case.document.to_bytes().decode("utf-8")
        raw = json.loads(raw_text)

        def variant(label: str, change, raw_text: str = raw_text, prefix: str = case.name) -> None:
            copy = json.loads(raw_text)
            change(copy)
            texts[f"{prefix} document {label}"] = json.dumps(copy, ensure_ascii=False)

        variant("unknown member", lambda d: d.update(extra="1"))
        variant("unknown suite", lambda d: d.update(hashSuite="sha512-128"))
        variant("registry checksum", _swap_case_of_registry)
        variant(
            "registry lower case",
            lambda d: d["anchor"].update(registry=d["anchor"]["registry"].lower()),
        )
        variant("other chain", lambda d: d["anchor"].update(chainId=d["anchor"]["chainId"] + 1))
        variant("uppercase root", lambda d: d["anchor"].update(root=d["anchor"]["root"].upper()))
        variant("no secret", lambda d: d.pop("secret"))
        variant("not a field", lambda d: d["fields"].update(colour="red"))
        variant("missing field", lambda d: d["fields"].pop("holderName"))
        variant("numeric field", lambda d: d["fields"].update(holderName=1))
        variant("other type", lambda d: d.update(type="food-business-licence"))
        variant("unpublished type version", lambda d: d.update(typeVersion=3))
        variant("type version 0", lambda d: d.update(typeVersion=0))
        variant("type version as text", lambda d: d.update(typeVersion="2"))
        variant("type version true", lambda d: d.update(typeVersion=True))
        variant("no type version", lambda d: d.pop("typeVersion"))
        variant("unknown type", lambda d: d.update(type="pet-licence"))
        variant("not yet valid", lambda d: d["fields"].update(validFrom="2999-01-01"))
        variant("not a date", lambda d: d["fields"].update(validUntil="2040-02-30"))
        variant("reordered", lambda d: d.update(fields=dict(reversed(list(d["fields"].items())))))
        texts[f"{case.name} document duplicate key"] = raw_text.replace(
            '"format":"elicence/1"', '"format":"elicence/1","format":"elicence/1"', 1
        )
        texts[f"{case.name} document fractional chain id"] = raw_text.replace(
            f'"chainId":{raw["anchor"]["chainId"]}', f'"chainId":{raw["anchor"]["chainId"]}.0', 1
        )
        texts[f"{case.name} document with a byte-order mark"] = "\ufeff" + raw_text
    texts.update(_crafted_payloads(cases[0].document))
    return texts


def _payload_of_cbor(raw: bytes) -> str:
    return "EL1:" + base45.b45encode(zlib.compress(raw, 9)).decode("ascii")


def _crafted_payloads(document: LicenceDocument) -> dict[str, str]:
    """Payloads whose CBOR is well compressed but not what a writer makes: kinds no
    payload uses, nesting, lengths, items out of place."""
    items = cbor2.loads(zlib.decompress(base45.b45decode(encode_payload(document, layout=1)[4:])))
    fields = items[7]

    def nested(depth: int) -> object:
        value: object = 1
        for _ in range(depth):
            value = [value]
        return value

    def with_item(index: int, value: object) -> list[object]:
        changed = list(items)
        changed[index] = value
        return changed

    crafted: dict[str, bytes] = {
        "P a map": cbor2.dumps({0: 1}),
        "P empty": cbor2.dumps([]),
        "P of 7": cbor2.dumps(items[:7]),
        "P of 10": cbor2.dumps([*items, b"\0" * 64, 1]),
        "P with a 63-byte seal": cbor2.dumps([*items, b"\0" * 63]),
        "P with a zero seal": cbor2.dumps([*items, b"\0" * 64]),
        "version 3": cbor2.dumps(with_item(0, 3)),
        "version true": cbor2.dumps(with_item(0, True)),
        "version 1.0": cbor2.dumps(with_item(0, 1.0)),
        "type -1": cbor2.dumps(with_item(1, -1)),
        "type 99": cbor2.dumps(with_item(1, 99)),
        "chain 0": cbor2.dumps(with_item(2, 0)),
        "chain 2^64-1": cbor2.dumps(with_item(2, 2**64 - 1)),
        "chain as text": cbor2.dumps(with_item(2, "1")),
        "registry of 19": cbor2.dumps(with_item(3, items[3][:19])),
        "proof of 15": cbor2.dumps(with_item(5, items[5][:15])),
        "proof tagged": cbor2.dumps(with_item(5, cbor2.CBORTag(24, items[5]))),
        "keys as a map": cbor2.dumps(with_item(6, {1: items[6]})),
        "fields one short": cbor2.dumps(with_item(7, fields[:-1])),
        "field a float": cbor2.dumps(with_item(7, [*fields[:-1], 1.5])),
        "field nested 2": cbor2.dumps(with_item(7, [*fields[:-1], nested(2)])),
        "field nested 3": cbor2.dumps(with_item(7, [*fields[:-1], nested(3)])),
        "field nested 4": cbor2.dumps(with_item(7, [*fields[:-1], nested(4)])),
        "field a map": cbor2.dumps(with_item(7, [*fields[:-1], {"a": [1]}])),
        "field undefined": cbor2.dumps(with_item(7, [*fields[:-1], cbor2.undefined])),
        "not UTF-8 text": cbor2.dumps(items)[:-1] + b"\xff",
        "bytes after P": cbor2.dumps(items) + b"\x00",
        "P cut short": cbor2.dumps(items)[:-3],
        "non-shortest head": b"\x98\x08" + cbor2.dumps(items)[1:],
        "indefinite P": b"\x9f" + cbor2.dumps(items)[1:] + b"\xff",
    }
    return {f"crafted {name}": _payload_of_cbor(raw) for name, raw in crafted.items()}


def _python_outcome(text: str, snapshot, today) -> dict[str, Any]:
    """What the service makes of `text`: its verdict's status and checks, or the code
    of its refusal."""
    try:
        read = _read(text, snapshot)
        verdict = verify(read, snapshot, today=today).to_json()
    except TypeUnavailable as exc:  # also DefinitionMismatch: could not check
        return {"refused": exc.code}
    except PayloadError as exc:
        return {"refused": exc.reason}
    except UnsupportedHashSuite as exc:
        return {"refused": exc.code}
    except DocumentError:
        return {"refused": "document"}
    return {"status": verdict["status"], "checks": _python_checks(verdict)}


def _page_outcome(page: dict[str, Any]) -> dict[str, Any]:
    if "error" in page:
        return {"refused": page["code"]}
    return {"status": page["status"], "checks": _js_checks(page)}


def test_the_page_reads_odd_payloads_and_documents_as_the_service_does(run):
    outcomes = run["outcomes"]
    assert len(outcomes) > 500
    differ = {
        name: (python, _page_outcome(run["js"][name]))
        for name, python in outcomes.items()
        if _page_outcome(run["js"][name]) != python
    }
    assert not differ, "\n".join(f"{n}: service {p}, page {q}" for n, (p, q) in differ.items())
    refused = {o["refused"] for o in outcomes.values() if "refused" in o}
    # The mutations reach the strict steps, not only the first one.
    assert {"base45", "zlib", "document", "unsupported-hash-suite", "prefix"} <= refused, refused
    assert "type.unavailable" in refused, refused


@pytest.mark.parametrize("suite", SUITES)
def test_a_licence_of_a_version_the_snapshot_lacks_could_not_be_checked_not_tampered(run, suite):
    for case in (f"{suite} VALID", f"{suite} VALID sealed"):
        name = f"{case} document unpublished type version"
        assert run["outcomes"][name] == {"refused": "type.unavailable"}
        page = run["js"][name]
        assert page.get("code") == "type.unavailable", page
        assert "status" not in page


def test_a_definition_that_is_not_its_canonical_text_is_never_used_by_either(run):
    # Signed, and hashing to the hash beside it, but not the registry's definition: the
    # page and the service read no licence by it (no verdict, never TAMPERED).
    code = catalogue().get("business-licence").code
    assert (code, 1) in run["crooked"].unreadable_types()
    assert f"{code}:1" in run["snapshots"]["crooked"]["unreadableTypes"]
    assert "business-licence@1" not in run["snapshots"]["crooked"]["types"]
    names = [n for n in run["outcomes"] if n.endswith("/ crooked definition")]
    assert len(names) == len(FORMS)
    for name in names:
        assert run["outcomes"][name] == {"refused": "type.unavailable"}, name
        assert run["js"][name].get("code") == "type.unavailable", run["js"][name]


def test_the_page_reads_every_published_type_from_the_snapshot(run):
    published = {f"{t.id}@{t.version}" for t in catalogue()} | {"business-licence@2"}
    assert set(run["snapshots"]["good"]["types"]) == published
    assert run["snapshots"]["good"]["unreadableTypes"] == {}


def _rewrite(source: Path, target: Path, change) -> Path:
    document = orjson.loads(gzip.decompress(source.read_bytes()))
    change(document)
    target.write_bytes(gzip.compress(orjson.dumps(document)))
    return target


def _odd_names(governor, seal_key: bytes):
    def change(document: dict[str, Any]) -> None:
        body = document["body"]
        controls = "".join(chr(c) for c in range(32))
        body["agencies"][1]["name"] = f'机关 "{controls}\\/\u2028\u2029\x7f é 😀'
        body["agencies"][1]["zzz unknown member"] = {"b": [1, None, "x"], "a": {"é": 1, "e": 2}}
        document["signatures"] = sign_body(body, body_digest(body), governor, seal_key)

    return change


def _altered_snapshots(
    tmp: Path, good: Path, anchor: dict[str, Any], options: dict[str, Any], governor: str
) -> dict[str, tuple[Path, dict[str, Any], str]]:
    """Each altered snapshot, the anchor the page trusts, and Python's refusal code."""
    outsider = "0x" + "12" * 20

    def drop_status(d):
        d["body"]["statuses"].pop()

    def drop_anchor(d):
        d["body"]["anchors"].pop(0)

    def rename_agency(d):
        d["body"]["agencies"][0]["name"] = "假冒机关"

    def chain_signature(position):
        def change(d):
            governor_signature = d["signatures"]["governor"]
            governor_signature["signature"] = _flip(governor_signature["signature"], position)

        return change

    def sm2_signature(d):
        d["signatures"]["sm2"]["signature"] = _flip(d["signatures"]["sm2"]["signature"], 10)

    def no_sm2(d):
        d["signatures"]["sm2"] = None

    def alter_definition(d):
        entry = _business_entry(d["body"])
        _relabelled(entry)
        entry["definitionHash"] = hashlib.sha256(entry["definition"].encode()).hexdigest()

    def format_1(d):
        d["format"] = "elicence-trust-snapshot/1"

    made: dict[str, tuple[Path, dict[str, Any], dict[str, Any]]] = {}
    for name, change in {
        "status removed": drop_status,
        "anchor removed": drop_anchor,
        "agency renamed": rename_agency,
        "chain signature 4": chain_signature(4),
        "chain signature 70": chain_signature(70),
        "chain signature 130": chain_signature(130),
        "definition altered": alter_definition,
        "format 1": format_1,
    }.items():
        made[name] = (_rewrite(good, tmp / f"{name}.snapshot", change), anchor, options)
    made["sm2 signature"] = (_rewrite(good, tmp / "sm2.snapshot", sm2_signature), anchor, options)
    made["sm2 removed"] = (_rewrite(good, tmp / "nosm2.snapshot", no_sm2), anchor, options)
    stranger = seal.public_key(seal.new_private_key())
    made["other sm2 key pinned"] = (
        good,
        {**anchor, "governorSealKey": stranger.hex()},
        {**options, "governor_seal_key": stranger},
    )
    made["other registry"] = (
        good,
        {**anchor, "registry": outsider},
        {**options, "registry": outsider},
    )
    made["other governor"] = (
        good,
        {**anchor, "governor": outsider},
        {**options, "governors": [outsider]},
    )
    damaged = tmp / "damaged.snapshot"
    damaged.write_bytes(good.read_bytes()[:100])
    made["damaged"] = (damaged, anchor, options)
    result = {}
    for name, (path, anchor_js, python_options) in made.items():
        try:
            load_snapshot(path, **python_options)
        except SnapshotRefused as exc:
            code = getattr(exc, "code", "?")
        else:
            code = "accepted"
        result[name] = (path, anchor_js, code)
    assert governor  # the good snapshot's signer, trusted above
    return result


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Any]:
    # Issuing version 2 reads it from the catalogue; the service then loads it from the
    # snapshot. Whatever the process's catalogue gained here is gone afterwards.
    held = catalogue()
    saved = held._by_key
    try:
        return _build_world(tmp_path_factory.mktemp("offline"))
    finally:
        held._install(saved)


def _python_checks(verdict: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["name"], c["outcome"], c["code"]) for c in verdict["checks"]]


def _js_checks(verdict: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["name"], c["outcome"], c["reason"]["code"]) for c in verdict["checks"]]


CASE_NAMES = [
    f"{suite} {label}"
    for suite in SUITES
    for label in (
        "VALID",
        "TAMPERED field",
        "TAMPERED proof",
        "TAMPERED credit code",
        "REVOKED",
        "SUPERSEDED",
        "EXPIRED",
        "ISSUER_NOT_AUTHORISED other authority",
        "SUSPENDED",
        "CANCELLED",
        "REVOKED with its batch over a suspension",
        "CANCELLED before its batch was revoked",
        "REVOKED with its batch",
        "TAMPERED seal unexpected",
        "VALID sealed",
        "TAMPERED seal",
        "TAMPERED seal missing",
        "ISSUER_NOT_AUTHORISED seal key compromised",
        "ISSUER_NOT_AUTHORISED key compromised",
    )
]
V2_CASE_NAMES = [
    f"{suite} {label}"
    for suite in SUITES
    for label in (
        "VALID version 2",
        "VALID version 2 without the new field",
        "TAMPERED type version",
    )
]
ALL_CASE_NAMES = CASE_NAMES + V2_CASE_NAMES
INTEGRITY_CASES = ("TAMPERED field", "TAMPERED proof", "TAMPERED credit code")


def _forms_of(case: str) -> tuple[str, ...]:
    return V2_FORMS if case in V2_CASE_NAMES else FORMS


@pytest.mark.parametrize(
    ("case", "form"), [(case, form) for case in ALL_CASE_NAMES for form in _forms_of(case)]
)
def test_the_page_gives_the_services_verdict_offline(run, case, form):
    name = f"{case} / {form}"
    python = run["python"][name]
    page = run["js"][name]
    assert "error" not in page, page
    assert page["status"] == python["status"]
    assert _js_checks(page) == _python_checks(python)
    expected = case.split(" ")[1]
    if form.startswith("el2") and case.split(" ", 1)[1] in INTEGRITY_CASES:
        # An EL2: payload carries no root: changed fields or proof fold to a root that
        # was never anchored (docs/format.md).
        expected = "NOT_ANCHORED"
    assert python["status"] == expected


@pytest.mark.parametrize("case", ALL_CASE_NAMES)
def test_the_page_words_the_services_reasons_with_the_same_parameters(run, case):
    name = f"{case} / json"
    python = {c["name"]: c for c in run["python"][name]["checks"]}
    for check in run["js"][name]["checks"]:
        if check["name"] not in python:
            continue
        params = dict(python[check["name"]]["params"])
        given = dict(check["reason"]["params"])
        # Free text that quotes Python's own error messages; the codes and fields agree.
        for words in ("problems", "error"):
            params.pop(words, None)
            given.pop(words, None)
        assert given == params, check["name"]


@pytest.mark.parametrize("case", ALL_CASE_NAMES)
def test_the_chain_gives_the_verdict_the_page_gives_from_the_snapshot(run, case):
    # The same registry read over JSON-RPC: chain, snapshot and page agree.
    for form in _forms_of(case):
        name = f"{case} / {form}"
        chain = run["on_chain"][name]
        assert _js_checks(run["js"][name]) == _python_checks(chain), name
        assert run["js"][name]["status"] == chain["status"], name


@pytest.mark.parametrize("case", ALL_CASE_NAMES)
def test_the_page_describes_the_licence_as_the_service_does(run, case):
    for form in _forms_of(case):
        name = f"{case} / {form}"
        python = dict(run["python"][name])
        page = run["js"][name]
        for member in ("checkedAt", "checks", "withheld"):
            python.pop(member)
        assert {k: page[k] for k in python} == python, name


def test_a_snapshot_older_than_its_limit_makes_every_verdict_stale(run):
    stale = run["js"]["sha256-128 VALID stale / json"]
    assert stale["stale"] is True
    assert stale["ageSeconds"] == 8 * 24 * 3600
    assert stale["status"] == "VALID"  # stale is said beside the verdict, not instead of it


def test_every_verdict_says_as_of_which_block_and_that_it_is_fresh(run):
    verdict = run["js"]["sha256-128 VALID / json"]
    snapshot = run["snapshot"]
    assert verdict["asOf"]["blockNumber"] == snapshot.block_number()
    when = dt.datetime.fromisoformat(verdict["asOf"]["blockTime"])
    assert when == snapshot.block_time
    assert verdict["stale"] is False
    assert run["snapshots"]["good"]["ok"] is True


def test_a_snapshot_re_signed_over_names_with_every_escape_is_accepted(run):
    assert run["python_refusals"]["odd names, re-signed"] == "accepted"
    assert run["snapshots"]["odd names, re-signed"].get("ok") is True, run["snapshots"]


@pytest.mark.parametrize(
    "name",
    [
        "status removed",
        "anchor removed",
        "agency renamed",
        "chain signature 4",
        "chain signature 70",
        "chain signature 130",
        "sm2 signature",
        "sm2 removed",
        "other sm2 key pinned",
        "other registry",
        "other governor",
        "damaged",
        "definition altered",
        "definition re-signed",
        "format 1",
    ],
)
def test_an_altered_or_foreign_snapshot_is_refused_with_the_services_code(run, name):
    page = run["snapshots"][name]
    python = run["python_refusals"][name]
    assert python != "accepted"
    assert page.get("refused") == python, page


def test_a_definition_signed_but_not_matching_its_hash_is_refused_as_such(run):
    assert run["python_refusals"]["definition re-signed"] == "definition"
    assert run["snapshots"]["definition re-signed"]["refused"] == "definition"
    code = catalogue().get("business-licence").code
    assert f"licence type {code} version 1" in run["snapshots"]["definition re-signed"]["message"]
