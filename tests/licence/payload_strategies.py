"""Hypothesis strategies shared by the EL1: and EL2: payload tests."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from licence.catalogue import catalogue
from licence.document import AnchorRef, LicenceDocument

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BUSINESS = catalogue().get("business-licence")

hashes = st.binary(min_size=16, max_size=16)
values = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=24)


@st.composite
def documents(
    draw: st.DrawFn, chain_id: int | None = None, rooted: bool = False
) -> LicenceDocument:
    """Any business licence or presentation the format allows. With `rooted`, its root is
    the one its leaf and proof fold to (an EL2: payload carries no other) and it may be
    sealed; otherwise the root is any 16 bytes and `chain_id` None draws one."""
    names = BUSINESS.field_names
    present_names = [n for n in names if BUSINESS.field(n).required or draw(st.booleans())]
    hidden_names = {
        n for n in present_names if n not in BUSINESS.mandatory_disclosure and draw(st.booleans())
    }
    fields = {n: draw(values) for n in present_names if n not in hidden_names}
    anchor = AnchorRef(
        chain_id=draw(st.integers(1, 2**64 - 1)) if chain_id is None else chain_id,
        registry=REGISTRY,
        root=b"" if rooted else draw(hashes),
        proof=tuple(draw(st.lists(hashes, max_size=20))),
        seal=draw(st.none() | st.binary(min_size=64, max_size=64)) if rooted else None,
    )
    if not hidden_names and draw(st.booleans()):
        document = LicenceDocument(BUSINESS, fields, anchor, secret=draw(hashes))
    else:
        document = LicenceDocument(
            BUSINESS,
            fields,
            anchor,
            salts={n: draw(hashes) for n in fields},
            hidden={n: draw(hashes) for n in hidden_names},
        )
    if not rooted:
        return document
    return dataclasses.replace(
        document, anchor=dataclasses.replace(anchor, root=document.computed_root())
    )


@st.composite
def changed_payloads(draw: st.DrawFn, payload: str) -> str:
    """`payload` with one character changed (in the prefix, to another of its letters)."""
    index = draw(st.integers(0, len(payload) - 1))
    alphabet = payload[:3] + BASE45 if index < 4 else BASE45
    char = draw(st.sampled_from(alphabet).filter(lambda c: c != payload[index]))
    return payload[:index] + char + payload[index + 1 :]
