"""Forged licences, by category, made from genuine ones.

Every forgery is the bytes an attacker would hand over (a JSON document, or an EL1:
payload) and the verdicts that are right for it: the status the first failing check
gives, or REFUSED when the document cannot even be read (a 4xx problem over HTTP). A
forgery that comes out "not VALID" for the wrong reason then shows up as a mismatch,
not as a pass.

The categories made here from documents alone (edits of fields, salts, secrets,
commitments, proofs, roots, anchors; injected and withheld fields; mixed licences) need
no chain. Those that need something done on chain (re-anchored revoked leaves, foreign
registries, out-of-scope types, retired, rotated and compromised agencies) are made by
the world fixture in tests/adversarial/conftest.py and added with `forgery()`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from issuer.batch import wrap_batch
from licence.document import LicenceDocument, loads_document
from licence.errors import LicenceFormatError
from licence.merkle import fold_proof
from licence.payload import decode_payload, encode_payload
from licence.presentation import present

REFUSED = "REFUSED"  # not readable as a licence: DocumentError, or a 4xx problem
TAMPERED = frozenset({"TAMPERED"})
NOT_ANCHORED = frozenset({"NOT_ANCHORED"})
REFUSED_ONLY = frozenset({REFUSED})


@dataclass(frozen=True)
class Forgery:
    """What an attacker presents, and the verdicts that are right for it."""

    category: str
    expected: frozenset[str]
    form: str  # "json" (a document's text) or "qr" (an EL1: payload)
    data: str

    def request_body(self) -> bytes:
        """The body of POST /v1/verifications carrying this forgery."""
        if self.form == "qr":
            return json.dumps({"qr": self.data}).encode()
        # Spliced as text, so that what is not valid JSON for a parser of objects
        # (duplicate members) reaches the service as the attacker wrote it.
        return b'{"document":' + self.data.encode("utf-8", "surrogatepass") + b"}"


def forgery(category: str, expected: Iterable[str], document: LicenceDocument) -> list[Forgery]:
    """A forgery made on chain, in both forms (document and QR payload)."""
    made = [Forgery(category, frozenset(expected), "json", document.to_bytes().decode())]
    # A payload too long for a QR code is left out: the JSON form stands for it.
    with contextlib.suppress(LicenceFormatError):
        # As EL1:, which carries the document's own root, chain and registry, so that a
        # forgery's verdict is the JSON form's; an EL2: payload names none of them, and a
        # changed one folds to a root anchored nowhere (NOT_ANCHORED, docs/format.md).
        payload = encode_payload(document, layout=1)
        made.append(Forgery(category, frozenset(expected), "qr", payload))
    return made


def read_forgery(item: Forgery) -> LicenceDocument:
    """The document as any verifier would read it (DocumentError/PayloadError if not)."""
    if item.form == "qr":
        return decode_payload(item.data)
    return loads_document(item.data.encode("utf-8", "surrogatepass"))


# ---- edits of one value ----------------------------------------------------------------

# Characters a person would read as the same (Latin/Cyrillic/Greek/full-width twins).
_LOOK_ALIKES = {
    "0": "О",
    "1": "l",
    "A": "А",
    "B": "В",
    "C": "С",
    "E": "Е",
    "H": "Н",
    "K": "К",
    "M": "М",
    "O": "О",
    "P": "Р",
    "T": "Т",
    "X": "Х",
    "Y": "Υ",
    "-": "‐",
    "市": "巿",
    "区": "區",
    "号": "號",
    "局": "侷",
    "有": "冇",
}


def _look_alike(value: str) -> str | None:
    for index, char in enumerate(value):
        if char in _LOOK_ALIKES:
            return value[:index] + _LOOK_ALIKES[char] + value[index + 1 :]
        if "0" <= char <= "9":
            return value[:index] + chr(0xFF10 + int(char)) + value[index + 1 :]  # full width
    return None


def _field_edits(value: str, other: str | None) -> dict[str, str]:
    edits = {
        "appended": value + "1",
        "first-char": ("X" if value[:1] != "X" else "Y") + value[1:],
        "leading-space": " " + value,
        "trailing-space": value + " ",
        "ideographic-space": value + "\u3000",
        "zero-width": value[:1] + "\u200b" + value[1:],
        "nfd": unicodedata.normalize("NFD", value) + "\u0301",
        "empty": "",
        "truncated": value[:-1],
    }
    alike = _look_alike(value)
    if alike is not None:
        edits["look-alike"] = alike
    if other is not None and other != value:
        edits["other-licence"] = other
    return {kind: edit for kind, edit in edits.items() if edit != value}


# ---- the document generator ------------------------------------------------------------


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False)


def _flip(hex_value: str, bit: int) -> str:
    raw = bytearray(bytes.fromhex(hex_value[2:]))
    raw[bit // 8 % len(raw)] ^= 1 << (bit % 8)
    return "0x" + raw.hex()


class Forger:
    """Makes forgeries of genuine licences (several batches, both licence types).

    `genuine` are full documents; `batches` maps each batch root to its documents (so
    that a licence can be mixed with its neighbours and with other batches).
    """

    def __init__(self, genuine: Sequence[LicenceDocument], seed: int = 15) -> None:
        self.genuine = list(genuine)
        self.random = random.Random(seed)
        self.made: list[Forgery] = []

    def _add(self, category: str, expected: frozenset[str], doc: dict[str, Any] | str) -> None:
        self.made.append(
            Forgery(category, expected, "json", doc if isinstance(doc, str) else _text(doc))
        )

    def _others(self, document: LicenceDocument) -> list[LicenceDocument]:
        return [
            d
            for d in self.genuine
            if d.licence_type == document.licence_type and d.licence_id != document.licence_id
        ]

    def all(self) -> list[Forgery]:
        """Every document-only forgery of every genuine licence, and their QR forms."""
        for document in self.genuine:
            others = self._others(document)
            other = self.random.choice(others)
            minimal = present(document, [])
            # Everything but the personal field, which stays behind its commitment.
            everything = present(
                document, [n for n in document.fields if n != "legalRepresentative"]
            )
            for form_name, form in (("full", document), ("presentation", minimal)):
                self._field_forgeries(form_name, form, other)
                self._proof_forgeries(form_name, form, other)
                self._anchor_forgeries(form_name, form, other)
                self._seal_forgeries(form_name, form)
            self._secret_forgeries(document, other)
            self._presentation_forgeries(minimal, everything, present(other, []))
            self._structure_forgeries(document, minimal)
            self._mixed_forgeries(document, other, others)
        self._qr_forms()
        return self.made

    # -- fields --------------------------------------------------------------------------

    def _field_forgeries(
        self, form_name: str, document: LicenceDocument, other: LicenceDocument
    ) -> None:
        base = document.to_json()
        for name, value in document.fields.items():
            for kind, edited in _field_edits(value, other.fields.get(name)).items():
                doc = copy.deepcopy(base)
                doc["fields"][name] = edited
                self._add(f"field-edit:{kind}:{form_name}", TAMPERED, doc)
            # The forger recomputes the root: integrity then passes, the anchor cannot.
            changed = replace(document, fields={**document.fields, name: value + "0"})
            consistent = replace(
                changed, anchor=replace(changed.anchor, root=changed.computed_root())
            )
            self._add(f"field-edit-consistent-root:{form_name}", NOT_ANCHORED, consistent.to_json())
        licence_type = document.licence_type
        for spec in licence_type.fields:
            if spec.name in document.fields:
                doc = copy.deepcopy(base)
                del doc["fields"][spec.name]
                doc.get("salts", {}).pop(spec.name, None)
                withheld = (
                    document.is_presentation and spec.name in licence_type.mandatory_disclosure
                )
                expected = REFUSED_ONLY if spec.required or withheld else TAMPERED
                if document.is_presentation and not spec.required and withheld:
                    expected = frozenset({REFUSED, "TAMPERED"})
                self._add(f"field-removed:{form_name}", expected, doc)
            elif spec.name not in document.hidden:
                doc = copy.deepcopy(base)
                doc["fields"][spec.name] = "2030-01-01" if spec.kind == "date" else "伪造"
                if document.is_presentation:
                    doc["salts"][spec.name] = "0x" + self.random.randbytes(16).hex()
                self._add(f"field-added:{form_name}", TAMPERED, doc)
        doc = copy.deepcopy(base)
        doc["fields"]["issuer"] = "北京市海淀区市场监督管理局"
        self._add(f"field-unknown:{form_name}", REFUSED_ONLY, doc)
        swapped_type = next(
            t for t in ("business-licence", "food-business-licence") if t != licence_type.id
        )
        doc = copy.deepcopy(base)
        doc["type"] = swapped_type
        self._add(f"type-swap:{form_name}", frozenset({REFUSED, "TAMPERED"}), doc)

    # -- proofs --------------------------------------------------------------------------

    def _proof_forgeries(
        self, form_name: str, document: LicenceDocument, other: LicenceDocument
    ) -> None:
        base = document.to_json()
        proof: list[str] = base["anchor"]["proof"]

        def with_proof(kind: str, new: list[str], expected: frozenset[str] = TAMPERED) -> None:
            doc = copy.deepcopy(base)
            doc["anchor"]["proof"] = new
            self._add(f"proof-{kind}:{form_name}", expected, doc)

        for index in range(len(proof)):
            for bit in (0, 7, 64, 127):
                with_proof(
                    "flipped-bit", [*proof[:index], _flip(proof[index], bit), *proof[index + 1 :]]
                )
            with_proof("element-dropped", proof[:index] + proof[index + 1 :])
            with_proof(
                "element-duplicated", [*proof[: index + 1], proof[index], *proof[index + 1 :]]
            )
        for i in range(len(proof)):
            for j in range(i + 1, len(proof)):
                swapped = list(proof)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                with_proof("swapped-siblings", swapped)
        if len(proof) >= 2:
            with_proof("reversed", proof[::-1])
            with_proof("rotated", proof[1:] + proof[:1])
        if proof:
            with_proof("truncated", proof[:-1])
            with_proof("empty", [])
            # Truncated, with the root set to the inner node it now reaches: unanchored.
            inner = fold_proof(document.licence_id, document.anchor.proof[:-1])
            doc = copy.deepcopy(base)
            doc["anchor"]["proof"] = proof[:-1]
            doc["anchor"]["root"] = "0x" + inner.hex()
            self._add(f"proof-truncated-consistent-root:{form_name}", NOT_ANCHORED, doc)
        with_proof("extended-random", [*proof, "0x" + self.random.randbytes(16).hex()])
        with_proof("extended-root", [*proof, base["anchor"]["root"]])
        with_proof("extended-leaf", ["0x" + document.licence_id.hex(), *proof])
        with_proof("of-another-licence", ["0x" + p.hex() for p in other.anchor.proof])
        with_proof(
            "too-long", ["0x" + self.random.randbytes(16).hex() for _ in range(41)], REFUSED_ONLY
        )
        with_proof("not-hex", [*proof, "0x" + "zz" * 16], REFUSED_ONLY)
        with_proof(
            "upper-case-hex",
            [p.upper().replace("0X", "0x") for p in proof] or ["0x" + "AB" * 16],
            REFUSED_ONLY,
        )

    # -- anchors: root, chain, registry --------------------------------------------------

    def _anchor_forgeries(
        self, form_name: str, document: LicenceDocument, other: LicenceDocument
    ) -> None:
        base = document.to_json()

        def with_anchor(kind: str, expected: frozenset[str], **members: Any) -> None:
            doc = copy.deepcopy(base)
            doc["anchor"].update(members)
            self._add(f"{kind}:{form_name}", expected, doc)

        for bit in (0, 9, 100):
            with_anchor("root-flipped-bit", TAMPERED, root=_flip(base["anchor"]["root"], bit))
        foreign_roots = {d.anchor.root for d in self.genuine} - {document.anchor.root}
        for root in sorted(foreign_roots)[:4]:
            with_anchor("root-of-another-batch", TAMPERED, root="0x" + root.hex())
        with_anchor("root-zero", TAMPERED, root="0x" + "00" * 16)
        # The leaf of one batch, with another batch's root and one of its licences' proof.
        if other.anchor.root != document.anchor.root:
            with_anchor(
                "leaf-with-other-batch-root-and-proof",
                TAMPERED,
                root="0x" + other.anchor.root.hex(),
                proof=["0x" + p.hex() for p in other.anchor.proof],
            )
        chain_id = base["anchor"]["chainId"]
        for value in (chain_id + 1, 1, 2**63, 2**64 + chain_id):
            with_anchor("chain-id-edit", NOT_ANCHORED, chainId=value)
        for value in (0, -1, "131277322940537", 1.5, True, None):
            with_anchor("chain-id-malformed", REFUSED_ONLY, chainId=value)
        registry = base["anchor"]["registry"]
        for value in (
            "0x" + "00" * 20,
            "0x" + registry[2:-1].lower() + ("0" if registry[-1].lower() != "0" else "1"),
            "0x" + self.random.randbytes(20).hex(),
        ):
            with_anchor("registry-edit", NOT_ANCHORED, registry=value)
        for value in (registry[:-1], registry + "0", registry.swapcase(), "", None):
            with_anchor("registry-malformed", REFUSED_ONLY, registry=value)

    # -- seals (the agency's SM2 seal of the root) ---------------------------------------

    def _seal_forgeries(self, form_name: str, document: LicenceDocument) -> None:
        base = document.to_json()

        def with_seal(kind: str, expected: frozenset[str], value: object) -> None:
            doc = copy.deepcopy(base)
            doc["anchor"]["seal"] = value
            self._add(f"seal-{kind}:{form_name}", expected, doc)

        seal = base["anchor"].get("seal")
        if seal is None:
            # A seal on a batch whose agency had no seal key then: made up, so refused.
            with_seal("added", TAMPERED, "0x" + self.random.randbytes(64).hex())
            return
        doc = copy.deepcopy(base)
        del doc["anchor"]["seal"]
        self._add(f"seal-stripped:{form_name}", TAMPERED, doc)
        for bit in (0, 255, 256, 511):
            with_seal("flipped-bit", TAMPERED, _flip(seal, bit))
        with_seal("zero", TAMPERED, "0x" + "00" * 64)
        with_seal("random", TAMPERED, "0x" + self.random.randbytes(64).hex())
        with_seal("r-and-s-swapped", TAMPERED, "0x" + seal[66:] + seal[2:66])
        for other in self.genuine:
            if other.anchor.seal is not None and other.anchor.root != document.anchor.root:
                with_seal("of-another-batch", TAMPERED, "0x" + other.anchor.seal.hex())
                break
        with_seal("upper-case-hex", REFUSED_ONLY, "0x" + seal[2:].upper())
        with_seal("short", REFUSED_ONLY, seal[:-2])
        with_seal("not-a-string", REFUSED_ONLY, 7)

    # -- secrets, salts, hidden commitments ----------------------------------------------

    def _secret_forgeries(self, document: LicenceDocument, other: LicenceDocument) -> None:
        base = document.to_json()
        for bit in (0, 1, 8, 100, 255):
            doc = copy.deepcopy(base)
            doc["secret"] = _flip(doc["secret"], bit)
            self._add("secret-flipped-bit", TAMPERED, doc)
        for kind, value in (
            ("other-licence", "0x" + (other.secret or b"").hex()),
            ("zero", "0x" + "00" * 16),
            ("random", "0x" + self.random.randbytes(16).hex()),
        ):
            doc = copy.deepcopy(base)
            doc["secret"] = value
            self._add(f"secret-{kind}", TAMPERED, doc)
        for value in ("0x" + "00" * 32, base["secret"][:-2], base["secret"].upper(), 7):
            doc = copy.deepcopy(base)
            doc["secret"] = value
            self._add("secret-malformed", REFUSED_ONLY, doc)

    def _presentation_forgeries(
        self, minimal: LicenceDocument, everything: LicenceDocument, other: LicenceDocument
    ) -> None:
        for form_name, document in (("minimal", minimal), ("disclosing", everything)):
            base = document.to_json()
            names = list(base["salts"])
            for name in names:
                for bit in (0, 77):
                    doc = copy.deepcopy(base)
                    doc["salts"][name] = _flip(doc["salts"][name], bit)
                    self._add(f"salt-flipped-bit:{form_name}", TAMPERED, doc)
                if name in other.salts:
                    doc = copy.deepcopy(base)
                    doc["salts"][name] = "0x" + other.salts[name].hex()
                    self._add(f"salt-of-other-licence:{form_name}", TAMPERED, doc)
            for a, b in itertools.pairwise(names):
                doc = copy.deepcopy(base)
                doc["salts"][a], doc["salts"][b] = doc["salts"][b], doc["salts"][a]
                self._add(f"salts-swapped:{form_name}", TAMPERED, doc)
            for name in list(base["hidden"]):
                doc = copy.deepcopy(base)
                doc["hidden"][name] = _flip(doc["hidden"][name], 3)
                self._add(f"hidden-flipped-bit:{form_name}", TAMPERED, doc)
                doc = copy.deepcopy(base)
                del doc["hidden"][name]
                self._add(f"hidden-dropped:{form_name}", frozenset({REFUSED, "TAMPERED"}), doc)
                # A value injected for a hidden field, with a made-up salt.
                doc = copy.deepcopy(base)
                del doc["hidden"][name]
                doc["fields"][name] = "王五"
                doc["salts"][name] = "0x" + self.random.randbytes(16).hex()
                self._add(f"injected-hidden-field:{form_name}", TAMPERED, doc)
                # Both shown and hidden: the verifier must not pick one.
                doc = copy.deepcopy(base)
                doc["fields"][name] = "王五"
                doc["salts"][name] = "0x" + self.random.randbytes(16).hex()
                self._add(f"injected-field-also-hidden:{form_name}", REFUSED_ONLY, doc)
            # A mandatory field withheld behind its true commitment: the commitments,
            # the licence id and the root are all genuine, so only the rule refuses it.
            commitments = document.commitments
            for name in sorted(document.licence_type.mandatory_disclosure & set(base["fields"])):
                doc = copy.deepcopy(base)
                del doc["fields"][name]
                del doc["salts"][name]
                doc["hidden"][name] = "0x" + commitments[name].hex()
                self._add("withheld-mandatory-field", REFUSED_ONLY, doc)
            theirs = {n: "0x" + other.hidden[n].hex() for n in base["hidden"] if n in other.hidden}
            if theirs:
                doc = copy.deepcopy(base)
                doc["hidden"].update(theirs)
                self._add(f"hidden-of-other-licence:{form_name}", TAMPERED, doc)

    # -- structure: injected members, duplicates ---------------------------------------

    def _structure_forgeries(self, document: LicenceDocument, minimal: LicenceDocument) -> None:
        for form_name, form in (("full", document), ("presentation", minimal)):
            base = form.to_json()
            for where, member, value in (
                ("", "status", "VALID"),
                ("", "issuer", {"name": "北京市海淀区市场监督管理局"}),
                ("", "verdict", "VALID"),
                ("anchor", "blockNumber", 1),
                ("anchor", "transaction", "0x" + "00" * 32),
            ):
                doc = copy.deepcopy(base)
                (doc[where] if where else doc)[member] = value
                self._add(f"injected-member:{form_name}", REFUSED_ONLY, doc)
            text = _text(base)
            forged_fields = {**base["fields"], "holderName": "伪造有限公司"}
            dup = text[:-1] + ',"fields":' + json.dumps(forged_fields, ensure_ascii=False) + "}"
            self._add(f"duplicate-member:{form_name}", REFUSED_ONLY, dup)
            self._add(f"format-edit:{form_name}", REFUSED_ONLY, {**base, "format": "elicence/2"})
            self._add(
                f"hash-suite-edit:{form_name}",
                frozenset({REFUSED, "TAMPERED"}),
                {**base, "hashSuite": "sha3-256/128"},
            )
        full = document.to_json()
        both = {**full, "salts": {}, "hidden": {}}
        self._add("secret-and-salts", REFUSED_ONLY, both)

    # -- mixed licences ------------------------------------------------------------------

    def _mixed_forgeries(
        self, document: LicenceDocument, other: LicenceDocument, others: list[LicenceDocument]
    ) -> None:
        mixes: dict[str, LicenceDocument] = {
            "fields-of-one-secret-of-another": replace(document, secret=other.secret),
            "fields-of-one-proof-of-another": replace(document, anchor=other.anchor),
        }
        elsewhere = [d for d in others if d.anchor.root != document.anchor.root]
        if elsewhere:
            # Same proof, another batch's root: the leaf of one batch under another root.
            mixes["leaf-of-one-batch-root-of-another"] = replace(
                document, anchor=replace(document.anchor, root=elsewhere[0].anchor.root)
            )
        theirs = present(other, [])
        mine = present(document, [])
        mixes["disclosed-of-one-hidden-of-another"] = replace(mine, hidden=theirs.hidden)
        mixes["presentation-of-one-anchor-of-another"] = replace(mine, anchor=theirs.anchor)
        half = dict(document.fields)
        for name in list(half)[::2]:
            if name in other.fields:
                half[name] = other.fields[name]
        mixes["half-the-fields-of-another"] = replace(document, fields=half)
        for kind, mixed in mixes.items():
            self._add(f"mixed:{kind}", TAMPERED, mixed.to_json())
        # A whole licence made up and wrapped by the forger: consistent, never anchored.
        rows = [
            {**d.fields, "registeredCapital": "1亿元人民币"}
            if "registeredCapital" in d.fields
            else {**d.fields, "businessItems": "预包装食品销售"}
            for d in [document, *others[:2]]
        ]
        made_up = wrap_batch(
            document.licence_type,
            rows,
            chain_id=document.anchor.chain_id,
            registry=document.anchor.registry,
        )
        for forged in made_up.documents:
            self._add("made-up-batch", NOT_ANCHORED, forged.to_json())
            self._add("made-up-batch:presentation", NOT_ANCHORED, present(forged, []).to_json())

    # -- QR forms ------------------------------------------------------------------------

    def _qr_forms(self) -> None:
        """A QR payload for a share of the readable forgeries (decoded by another path)."""
        extra = []
        for item in self.made:
            if self.random.random() >= 0.2:
                continue
            try:
                payload = encode_payload(read_forgery(item), layout=1)  # as in forgery()
            except (LicenceFormatError, ValueError, UnicodeError):
                continue
            extra.append(replace(item, form="qr", data=payload))
        self.made.extend(extra)


def capped(items: Sequence[Forgery], per_category: int, seed: int = 15) -> list[Forgery]:
    """At most `per_category` forgeries of each category (a seeded, stable choice)."""
    chooser = random.Random(seed)
    by_category: dict[str, list[Forgery]] = {}
    for item in items:
        by_category.setdefault(item.category, []).append(item)
    kept: list[Forgery] = []
    for category in sorted(by_category):
        group = by_category[category]
        kept.extend(group if len(group) <= per_category else chooser.sample(group, per_category))
    return kept


def outcomes_table(
    items: Sequence[Forgery], outcome_of: Callable[[Forgery], str]
) -> tuple[str, list[str], int]:
    """Per-category counts of outcomes, the forgeries that got an unexpected one, and
    how many came out VALID."""
    counts: dict[str, Counter[str]] = {}
    wrong: list[str] = []
    valid = 0
    for item in items:
        outcome = outcome_of(item)
        counts.setdefault(item.category.split(":")[0], Counter())[outcome] += 1
        if outcome == "VALID":
            valid += 1
        if outcome not in item.expected:
            wrong.append(
                f"{item.category} [{item.form}]: {outcome}, "
                f"expected {'/'.join(sorted(item.expected))}"
            )
    lines = [f"{len(items)} forgeries, {len(counts)} categories:"]
    for category in sorted(counts):
        shown = ", ".join(f"{k} {v}" for k, v in sorted(counts[category].items()))
        lines.append(f"  {category:48} {sum(counts[category].values()):5}  {shown}")
    return "\n".join(lines), wrong, valid


def categories(items: Iterable[Forgery]) -> Iterator[str]:
    """The distinct categories (without the form suffix)."""
    return iter(sorted({i.category.split(":")[0] for i in items}))
