"""Presenting a licence: disclose the fields a matter needs, hide the rest (可用不可见).

A presentation replaces the licence secret by the salt of each disclosed field, and each
hidden field by its commitment, so a verifier recomputes the same licence id and root
while learning nothing about what is hidden: a salt is an HMAC output, so it says
nothing about the other salts, and without its salt a hidden field cannot be found by
hashing guesses.

The fields the catalogue marks for mandatory disclosure (`mandatoryDisclosure`) are
always disclosed, whether named or not, because every approval needs them (number,
holder, validity, authority). A presentation can be presented again, but only to hide
more: a hidden field's value is not in it, so it cannot be revealed.
"""

from __future__ import annotations

from collections.abc import Iterable

from licence.document import LicenceDocument
from licence.errors import PresentationError


def present(document: LicenceDocument, disclose: Iterable[str]) -> LicenceDocument:
    """A presentation of `document` disclosing `disclose` plus the mandatory fields.

    Raises PresentationError for a name that is not a field of the licence type, a field
    the licence does not have, or (from a presentation) a field that is already hidden.
    """
    licence_type = document.licence_type
    wanted = set(licence_type.mandatory_disclosure)
    for name in disclose:
        if licence_type.field(name) is None:
            known = ", ".join(licence_type.field_names)
            raise PresentationError(
                name,
                f"is not a field of {licence_type.name.zh} ({licence_type.id}); known: {known}",
            )
        if name in document.hidden:
            raise PresentationError(
                name, "is hidden in this presentation; a presentation can only hide more"
            )
        if name not in document.fields:
            raise PresentationError(name, "this licence does not have that field")
        wanted.add(name)
    commitments = document.commitments
    shown = [n for n in licence_type.field_names if n in wanted and n in document.fields]
    return LicenceDocument(
        licence_type=licence_type,
        fields={n: document.fields[n] for n in shown},
        anchor=document.anchor,
        suite=document.suite,
        secret=None,
        salts={n: document.salt_of(n) for n in shown},
        hidden={n: c for n, c in commitments.items() if n not in shown},
    )
