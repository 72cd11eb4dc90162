"""Thousands of forged licences, and not one VALID: in process and over the HTTP API.

Each forgery also has the verdict that is right for it (tests/adversarial/forgeries.py),
so one refused for the wrong reason (a made-up root called TAMPERED, a re-anchored
revoked leaf called anything but REVOKED) is a failure too. Run with -s to see the table
of categories and outcomes.
"""

from __future__ import annotations

import json

import pytest

from ledger import Registry
from licence.errors import LicenceFormatError
from tests.adversarial.conftest import FOOD, ROTATING_NAME, World, _food
from tests.adversarial.forgeries import (
    REFUSED,
    Forger,
    Forgery,
    capped,
    categories,
    forgery,
    outcomes_table,
    read_forgery,
)
from tests.service.conftest import make_service
from verifier.checks import verify

MIN_FORGERIES = 2_000
PER_CATEGORY = 40  # document-only categories: enough of each, the run stays short
HTTP_REFUSED = {400, 413, 415, 422}


@pytest.fixture(scope="module")
def forgeries(world: World) -> list[Forgery]:
    """The document-only forgeries (capped per category) and the on-chain ones."""
    return capped(Forger(world.genuine).all(), PER_CATEGORY) + world.onchain_forgeries


def verdict_in_process(index):
    def outcome(item: Forgery) -> str:
        try:
            document = read_forgery(item)
        except (LicenceFormatError, ValueError):
            return REFUSED
        return verify(document, index).status.value

    return outcome


def verdict_over_http(service):
    def outcome(item: Forgery) -> str:
        answer = service.post("/v1/verifications", item.request_body())
        if answer.status_code == 200:
            return str(answer.json()["status"])
        if answer.status_code in HTTP_REFUSED:
            return REFUSED
        return f"HTTP {answer.status_code}"

    return outcome


def _service(folder, world: World):
    return make_service(
        folder, world.registry, world.agencies["agency"], anonymous_rate=1e9, anonymous_burst=10**9
    )


@pytest.fixture
def http_service(tmp_path, world: World):
    made = _service(tmp_path, world)
    with made.client:
        yield made


@pytest.fixture(scope="module")
def in_process(forgeries, world: World, tmp_path_factory):
    """(table, wrong verdicts, VALID count) of every forgery through verify()."""
    index = world.index(tmp_path_factory.mktemp("index"))
    return outcomes_table(forgeries, verdict_in_process(index))


@pytest.fixture(scope="module")
def over_http(forgeries, world: World, tmp_path_factory):
    """(table, wrong verdicts, VALID count) of every forgery through POST /v1/verifications."""
    made = _service(tmp_path_factory.mktemp("service"), world)
    with made.client:
        return outcomes_table(forgeries, verdict_over_http(made))


def test_the_generator_makes_thousands_of_forgeries_in_every_category(forgeries):
    named = set(categories(forgeries))
    assert len(forgeries) >= MIN_FORGERIES, f"only {len(forgeries)} forgeries"
    for expected in (
        "field-edit",
        "field-edit-consistent-root",
        "salt-flipped-bit",
        "secret-flipped-bit",
        "proof-swapped-siblings",
        "proof-truncated",
        "proof-extended-random",
        "proof-reversed",
        "root-of-another-batch",
        "chain-id-edit",
        "registry-edit",
        "injected-member",
        "injected-hidden-field",
        "withheld-mandatory-field",
        "mixed",
        "leaf-with-other-batch-root-and-proof",
        "made-up-batch",
        "reanchored-revoked-leaf",
        "reanchored-cancelled-leaf",
        "reanchored-superseded-leaf",
        "foreign-registry",
        "out-of-scope-type-disguised",
        "retired-agency-anchor-refused",
        "rotated-spent-key-anchor-refused",
        "super-root-over-another-agencys-batch",
    ):
        assert any(n == expected or n.startswith(expected + ":") for n in named), expected
    assert {f.form for f in forgeries} == {"json", "qr"}


def test_the_registry_refused_every_anchor_outside_an_agencys_rights(world: World):
    assert world.refused_anchors == [
        "food batch of an agency without food",
        "batch of a type code never granted",
        "batch of a retired agency",
        "batch of a spent key",
        "stranger anchoring in the trusted registry",
    ]


def test_genuine_licences_of_every_batch_verify_valid(world: World, tmp_path, http_service):
    """The control: the forgeries fail because they are forged, not because the world is
    broken (retired and rotated agencies' earlier licences included)."""
    index = world.index(tmp_path)
    genuine = [f for d in world.genuine for f in forgery("genuine", {"VALID"}, d)]
    assert {verdict_in_process(index)(f) for f in genuine} == {"VALID"}
    assert {verdict_over_http(http_service)(f) for f in genuine} == {"VALID"}


def test_no_forgery_verifies_valid_in_process(in_process):
    table, wrong, valid = in_process
    print("\nverify() in process\n" + table)
    assert valid == 0, f"{valid} forgeries VALID\n{table}\n" + "\n".join(
        w for w in wrong if ": VALID," in w
    )


def test_every_forgery_gets_its_own_verdict_in_process(in_process):
    table, wrong, _ = in_process
    assert wrong == [], f"{len(wrong)} forgeries with a wrong verdict\n{table}\n" + "\n".join(
        sorted(set(wrong))[:60]
    )


def test_no_forgery_verifies_valid_over_http(over_http):
    table, wrong, valid = over_http
    print("\nPOST /v1/verifications\n" + table)
    errors = [w for w in wrong if ": HTTP " in w]
    assert valid == 0, f"{valid} forgeries VALID over HTTP\n{table}\n" + "\n".join(
        w for w in wrong if ": VALID," in w
    )
    assert errors == [], f"answers that are not a verdict or a 4xx problem\n{table}\n" + "\n".join(
        errors[:40]
    )


def test_every_forgery_gets_its_own_verdict_over_http(over_http):
    table, wrong, _ = over_http
    assert wrong == [], f"{len(wrong)} forgeries with a wrong verdict\n{table}\n" + "\n".join(
        sorted(set(wrong))[:60]
    )


# ---- withdrawing a batch and everything a compromised key signed (issue #15, item 4) ----

_BATCH_REVOCATION = ("revoke_batch", "revoke_root")
_COMPROMISE = (
    "mark_signer_compromised",
    "mark_compromised",
    "compromise_key",
    "mark_key_compromised",
    "compromise_agency",
)


def _operation(names: tuple[str, ...]):
    for name in names:
        if hasattr(Registry, name):
            return name
    pytest.fail(f"Registry has none of {', '.join(names)} (issue #15 item 4 not landed yet)")


def test_licences_of_a_batch_the_governor_revoked_are_not_valid(
    world: World, tmp_path, http_service
):
    name = _operation(_BATCH_REVOCATION)
    batch = world.issue(
        "agency",
        world.genuine[0].licence_type,
        [{**world.genuine[0].fields, "licenceNumber": f"1101089{n:011d}"} for n in (801, 802)],
    )
    getattr(world.registry, name)(world.governor, batch.root, 1)
    withdrawn = [f for d in batch.documents for f in forgery("batch-revoked", {"REVOKED"}, d)]
    table, wrong, valid = outcomes_table(withdrawn, verdict_in_process(world.index(tmp_path)))
    assert valid == 0 and wrong == [], table + "\n".join(wrong)
    table, wrong, valid = outcomes_table(withdrawn, verdict_over_http(http_service))
    assert valid == 0 and wrong == [], table + "\n".join(wrong)


def test_anchors_of_a_compromised_key_after_the_compromise_are_not_valid(
    world: World, tmp_path, http_service
):
    """The rotating agency's current key is stolen: what it anchored from the reported
    block on is not valid (and says why); what it anchored before stays valid."""
    name = _operation(_COMPROMISE)
    thief = world.agencies["rotated-to"]
    before = world.issue("rotated-to", FOOD, [_food(810, ROTATING_NAME)])
    block = world.chain.block_number() + 1
    after = world.issue("rotated-to", FOOD, [_food(811, ROTATING_NAME), _food(812, ROTATING_NAME)])
    operation = getattr(world.registry, name)
    if name == "mark_signer_compromised":
        operation(world.governor, thief.address, block)
    else:
        operation(world.governor, world.agency_ids["rotating"], block)
    index = world.index(tmp_path)
    stolen = [
        f
        for d in after.documents
        for f in forgery("compromised-key", {"ISSUER_NOT_AUTHORISED", "REVOKED"}, d)
    ]
    table, _, valid = outcomes_table(stolen, verdict_in_process(index))
    assert valid == 0, table
    reasons = [
        c.reason
        for d in after.documents
        for c in verify(d, index).checks
        if c.outcome.value == "failed"
    ]
    assert reasons and all("compromis" in r for r in reasons), reasons
    table, _, valid = outcomes_table(stolen, verdict_over_http(http_service))
    assert valid == 0, table
    earlier = [f for d in before.documents for f in forgery("before-compromise", {"VALID"}, d)]
    assert {verdict_in_process(index)(f) for f in earlier} == {"VALID"}
    assert {verdict_over_http(http_service)(f) for f in earlier} == {"VALID"}


def test_forgery_bodies_are_json(forgeries):
    """A guard on the generator itself: every JSON forgery is one JSON text (duplicate
    members aside), so the service sees exactly what was meant."""
    for item in forgeries:
        if item.form == "json" and "duplicate" not in item.category:
            json.loads(item.data)
