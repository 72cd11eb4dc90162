"""The adversarial world: a registry with honest and dishonest agencies, genuine batches
of both licence types, and the forgeries that need the chain to be made.

Built once per module on an in-process chain (tests/conftest.py's keys, agencies and
samples), because every forgery test reads the same world and building it anchors a few
dozen transactions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from issuer.batch import WrappedBatch, wrap_batch
from ledger import Chain, Registry, connect
from ledger.errors import RegistryRejected
from ledger.index import RegistryIndex
from licence import seal
from licence.catalogue import catalogue
from licence.document import AnchorRef, LicenceDocument
from licence.merkle import node_hash
from licence.reasons import Reason
from tests.adversarial.forgeries import NOT_ANCHORED, Forgery, forgery
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    AGENCY_TYPES,
    FUNDING_WEI,
    OTHER_AGENCY_CODE,
    OTHER_AGENCY_NAME,
    OTHER_AGENCY_TYPES,
    key_for,
    publish_types,
)
from tests.samples import business_licence, credit_code, food_business_licence

BUSINESS = catalogue().get("business-licence")
FOOD = catalogue().get("food-business-licence")
RETIRING_NAME = "北京市朝阳区市场监督管理局"
RETIRING_CODE = credit_code(90_001)
ROTATING_NAME = "北京市西城区市场监督管理局"
ROTATING_CODE = credit_code(90_002)
SEALING_NAME = "北京市东城区市场监督管理局"
SEALING_CODE = credit_code(90_003)


@dataclass
class World:
    """The chain, its registry, the people on it, and what they anchored."""

    chain: Chain
    registry: Registry
    governor: LocalAccount
    agencies: dict[str, LocalAccount]
    genuine: list[LicenceDocument]  # valid today, full documents, several batches
    onchain_forgeries: list[Forgery] = field(default_factory=list)
    refused_anchors: list[str] = field(default_factory=list)  # what the registry refused
    agency_ids: dict[str, int] = field(default_factory=dict)

    def index(self, folder: Path) -> RegistryIndex:
        """A fresh index of the registry, caught up (what a verifier reads)."""
        index = RegistryIndex(folder / "index.sqlite", self.registry)
        index.catch_up()
        return index

    def wrap(
        self,
        licence_type,
        rows,
        secrets=None,
        registry: Registry | None = None,
        seal_key: bytes | None = None,
    ) -> WrappedBatch:
        target = registry or self.registry
        address = bytes.fromhex(target.address[2:])
        return wrap_batch(
            licence_type,
            rows,
            chain_id=self.chain.chain_id,
            registry=target.address,
            secrets=secrets,
            sealer=None
            if seal_key is None
            else lambda root: seal.seal_root(seal_key, self.chain.chain_id, address, root),
        )

    def issue(
        self, who: str, licence_type, rows, secrets=None, declared_type=None, seal_key=None
    ) -> WrappedBatch:
        """Wrap and anchor rows as one batch of agency `who` (sealed with `seal_key`)."""
        batch = self.wrap(licence_type, rows, secrets, seal_key=seal_key)
        code = licence_type.code if declared_type is None else declared_type
        self.registry.anchor(self.agencies[who], batch.root, code, len(batch.documents))
        return batch

    def refused(self, what: str, who: str, licence_type, rows, declared_type=None) -> WrappedBatch:
        """A batch whose anchoring the registry must refuse; its documents are kept."""
        batch = self.wrap(licence_type, rows)
        code = licence_type.code if declared_type is None else declared_type
        with pytest.raises(RegistryRejected):
            self.registry.anchor(self.agencies[who], batch.root, code, len(batch.documents))
        self.refused_anchors.append(what)
        return batch

    def add(self, category: str, expected, documents) -> None:
        for document in documents:
            self.onchain_forgeries.extend(forgery(category, expected, document))


def _business(index: int, authority: str = AGENCY_NAME, **overrides: str) -> dict[str, str]:
    return business_licence(index, issuingAuthority=authority, **overrides)


def _food(index: int, authority: str = AGENCY_NAME) -> dict[str, str]:
    return food_business_licence(index, issuingAuthority=authority)


def _reanchored(world: World, who: str, original: LicenceDocument, extra_row) -> LicenceDocument:
    """`original` (same fields and secret, so the same licence id) anchored again in a new
    batch of agency `who`, as that batch's document names it."""
    assert original.secret is not None
    batch = world.issue(
        who,
        original.licence_type,
        [original.fields, extra_row],
        secrets=[original.secret, os.urandom(16)],
    )
    again = batch.documents[0]
    assert again.licence_id == original.licence_id
    return again


def build_world() -> World:
    chain = connect("embedded")
    people = {
        label: key_for(f"adversarial-{label}")
        for label in (
            "governor",
            "agency",
            "other-agency",
            "retiring",
            "rotating",
            "rotated-to",
            "stranger",
            "sealing",
        )
    }
    for account in people.values():
        chain.fund(account.address, FUNDING_WEI)
    governor = people["governor"]
    registry = Registry.deploy(chain, governor)
    world = World(chain, registry, governor, people, [])
    for who, code, name, types in (
        ("agency", AGENCY_CODE, AGENCY_NAME, AGENCY_TYPES),
        ("other-agency", OTHER_AGENCY_CODE, OTHER_AGENCY_NAME, OTHER_AGENCY_TYPES),
        ("retiring", RETIRING_CODE, RETIRING_NAME, {1}),
        ("rotating", ROTATING_CODE, ROTATING_NAME, {1, 2}),
    ):
        publish_types(registry, governor, types)
        world.agency_ids[who], _ = registry.register_agency(
            governor, code, name, people[who].address, types
        )

    # Genuine: several batches of both types by two agencies (odd sizes: unpaired leaves).
    a = world.issue("agency", BUSINESS, [_business(i) for i in range(7)])
    b = world.issue("agency", BUSINESS, [_business(i) for i in range(100, 104)])
    c = world.issue("agency", FOOD, [_food(i) for i in range(5)])
    d = world.issue(
        "other-agency", BUSINESS, [_business(i, OTHER_AGENCY_NAME) for i in range(200, 203)]
    )
    retiring_batch = world.issue(
        "retiring", BUSINESS, [_business(i, RETIRING_NAME) for i in range(300, 302)]
    )
    rotating_batch = world.issue(
        "rotating", FOOD, [_food(i, ROTATING_NAME) for i in range(400, 402)]
    )
    revoked, cancelled, superseded, suspended = a.documents[:4]
    world.genuine = [
        *a.documents[4:],
        *b.documents,
        *c.documents,
        *d.documents,
        *retiring_batch.documents,  # anchored before retirement: stay valid
        *rotating_batch.documents,  # anchored before rotation: stay valid
    ]

    # Final statuses, then the same leaves anchored again by their own agency.
    registry.revoke(people["agency"], a.root, revoked.licence_id, int(Reason.FRAUD))
    registry.cancel(people["agency"], a.root, cancelled.licence_id, int(Reason.HOLDER_REQUEST))
    registry.supersede(
        people["agency"], a.root, superseded.licence_id, b.documents[0].licence_id, 0
    )
    registry.suspend(people["agency"], a.root, suspended.licence_id, int(Reason.COURT_ORDER))
    world.add("revoked-original", {"REVOKED"}, [revoked])
    world.add("cancelled-original", {"CANCELLED"}, [cancelled])
    world.add("superseded-original", {"SUPERSEDED"}, [superseded])
    world.add("suspended-original", {"SUSPENDED"}, [suspended])
    for status, original, offset in (
        ("REVOKED", revoked, 500),
        ("CANCELLED", cancelled, 501),
        ("SUPERSEDED", superseded, 502),
    ):
        again = _reanchored(world, "agency", original, _business(offset))
        world.add(f"reanchored-{status.lower()}-leaf", {status}, [again])
        # The leaf alone as a one-licence batch: its root is the leaf itself.
        registry.anchor(people["agency"], original.licence_id, BUSINESS.code, 1)
        alone = replace(
            original, anchor=AnchorRef(chain.chain_id, registry.address, original.licence_id, ())
        )
        world.add(f"reanchored-{status.lower()}-leaf-alone", {status}, [alone])
    # Another agency anchoring an agency's revoked leaf: not its licence, and revoked.
    other_batch = world.wrap(
        BUSINESS,
        [revoked.fields, _business(503, OTHER_AGENCY_NAME)],
        [revoked.secret, os.urandom(16)],
    )
    registry.anchor(people["other-agency"], other_batch.root, BUSINESS.code, 2)
    world.add(
        "revoked-leaf-anchored-by-another-agency",
        {"ISSUER_NOT_AUTHORISED", "REVOKED"},
        [other_batch.documents[0]],
    )

    # An agency anchors a root over another agency's batch root ("super-root"): that
    # agency's licences reach it with one more proof element.
    extra = os.urandom(16)
    super_root = node_hash(b.root, extra)
    registry.anchor(people["other-agency"], super_root, BUSINESS.code, 1)
    world.add(
        "super-root-over-another-agencys-batch",
        {"ISSUER_NOT_AUTHORISED"},
        [
            replace(d0, anchor=replace(d0.anchor, root=super_root, proof=(*d0.anchor.proof, extra)))
            for d0 in b.documents
        ],
    )

    # Out of scope: agency 2 is not authorised for food licences.
    refused = world.refused(
        "food batch of an agency without food",
        "other-agency",
        FOOD,
        [_food(600, OTHER_AGENCY_NAME)],
    )
    world.add("out-of-scope-type-refused", NOT_ANCHORED, refused.documents)
    # ... so it anchors its food licences declared as business licences.
    disguised = world.issue(
        "other-agency",
        FOOD,
        [_food(i, OTHER_AGENCY_NAME) for i in range(610, 613)],
        declared_type=BUSINESS.code,
    )
    world.add("out-of-scope-type-disguised", {"ISSUER_NOT_AUTHORISED"}, disguised.documents)
    # An agency issuing in another agency's name.
    impostor = world.issue("other-agency", BUSINESS, [_business(i) for i in range(620, 623)])
    world.add("issuing-in-another-agencys-name", {"ISSUER_NOT_AUTHORISED"}, impostor.documents)
    # An agency's licences presented as another's: the authority field edited, root
    # recomputed and anchored by the impostor.
    # (Covered above: the edited field makes a new leaf, so only the impostor's anchor can
    # carry it, and the issuer check names the mismatch.)

    # A batch root never anchored but declared by type: the registry refuses a type code
    # outside the catalogue's reach for this agency.
    refused = world.refused(
        "batch of a type code never granted", "agency", BUSINESS, [_business(630)], declared_type=3
    )
    world.add("undeclared-type-code-refused", NOT_ANCHORED, refused.documents)

    # Retired: what it anchored before stays valid; after, the registry refuses it.
    registry.retire_agency(governor, world.agency_ids["retiring"])
    refused = world.refused(
        "batch of a retired agency",
        "retiring",
        BUSINESS,
        [_business(i, RETIRING_NAME) for i in range(640, 642)],
    )
    world.add("retired-agency-anchor-refused", NOT_ANCHORED, refused.documents)

    # Rotated: the spent key is refused; the new key issues in the agency's name.
    registry.rotate_signer(governor, world.agency_ids["rotating"], people["rotated-to"].address)
    refused = world.refused(
        "batch of a spent key", "rotating", FOOD, [_food(i, ROTATING_NAME) for i in range(650, 652)]
    )
    world.add("rotated-spent-key-anchor-refused", NOT_ANCHORED, refused.documents)

    # A stranger deploys a registry of its own, registers a look-alike of agency 1 (same
    # name and code) and anchors a forged licence in it.
    stranger = people["stranger"]
    foreign = Registry.deploy(chain, stranger)
    publish_types(foreign, stranger, AGENCY_TYPES)
    foreign.register_agency(stranger, AGENCY_CODE, AGENCY_NAME, stranger.address, AGENCY_TYPES)
    forged_rows = [
        _business(0, registeredCapital="1亿元人民币"),
        _business(700),
    ]
    forged = world.wrap(BUSINESS, forged_rows, registry=foreign)
    foreign.anchor(stranger, forged.root, BUSINESS.code, len(forged.documents))
    world.add("foreign-registry", NOT_ANCHORED, forged.documents)
    # ... and the same documents claiming the trusted registry.
    world.add(
        "foreign-root-claiming-trusted-registry",
        NOT_ANCHORED,
        [
            replace(d0, anchor=replace(d0.anchor, registry=registry.address))
            for d0 in forged.documents
        ],
    )
    # The stranger anchoring in the trusted registry is refused.
    with pytest.raises(RegistryRejected):
        registry.anchor(stranger, forged.root, BUSINESS.code, 2)
    world.refused_anchors.append("stranger anchoring in the trusted registry")
    _seal_world(world)
    return world


def _seal_world(world: World) -> None:
    """An agency that seals its batches (SM2), its genuine batches before and after its
    seal key, and the seal forgeries that need the chain: a thief of its chain key
    without its seal key, and with it once the seal key is reported compromised."""
    registry, governor = world.registry, world.governor
    publish_types(registry, governor, {1})
    world.agency_ids["sealing"], _ = registry.register_agency(
        governor, SEALING_CODE, SEALING_NAME, world.agencies["sealing"].address, {1}
    )
    rows = iter(_business(i, SEALING_NAME) for i in range(800, 900))

    def batch(n: int, seal_key: bytes | None = None) -> WrappedBatch:
        return world.issue("sealing", BUSINESS, [next(rows) for _ in range(n)], seal_key=seal_key)

    before = batch(3)  # anchored before the agency had a seal key: needs none
    key = seal.new_private_key()
    start = registry.chain.block_number() + 1
    registry.register_seal_key(governor, world.agency_ids["sealing"], seal.public_key(key), start)
    sealed = batch(5, key)
    world.genuine += [*before.documents, *sealed.documents, *batch(2, key).documents]

    # Whoever holds the agency's chain key but not its seal key cannot seal.
    world.add("seal-by-another-key", {"TAMPERED"}, batch(2, seal.new_private_key()).documents)
    world.add("seal-missing-after-the-seal-key", {"TAMPERED"}, batch(2).documents)
    # A valid signature by the seal key, over a root it never sealed for this registry.
    elsewhere = seal.seal_root(key, world.chain.chain_id, b"\x11" * 20, sealed.root)
    world.add(
        "seal-for-another-registry",
        {"TAMPERED"},
        [replace(d, anchor=replace(d.anchor, seal=elsewhere)) for d in sealed.documents[:2]],
    )
    # ... and over a batch anchored before seals, where no seal is expected.
    world.add(
        "seal-on-a-batch-before-seals",
        {"TAMPERED"},
        [
            replace(
                d,
                anchor=replace(
                    d.anchor,
                    seal=seal.seal_root(
                        key,
                        world.chain.chain_id,
                        bytes.fromhex(registry.address[2:]),
                        before.root,
                    ),
                ),
            )
            for d in before.documents[:2]
        ],
    )
    # With both keys stolen: once the seal key is reported compromised, what it seals from
    # that block on does not count (what it sealed before does).
    since = registry.chain.block_number() + 1
    stolen = batch(2, key)
    registry.mark_seal_key_compromised(governor, world.agency_ids["sealing"], 1, since)
    world.add("seal-by-a-compromised-key", {"ISSUER_NOT_AUTHORISED"}, stolen.documents)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    """The adversarial world (see the module docstring)."""
    yield build_world()
