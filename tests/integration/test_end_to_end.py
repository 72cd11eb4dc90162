"""The same story on two real chains reached over HTTP: the embedded node and anvil.

deploy -> authorise -> issue -> verify (from the index) -> revoke -> verify at once.
"""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from issuer.status import revoke
from ledger import Registry, connect
from ledger.errors import (
    ChainUnreachable,
    InsufficientFunds,
    RegistryNotFound,
    WrongChain,
)
from ledger.index import RegistryIndex
from licence.catalogue import catalogue
from licence.payload import decode_payload, encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.conftest import (
    AGENCY_CODE,
    ANVIL_FAUCET_KEY,
    ELICENCE,
    NodeProcess,
    key_for,
    publish_types,
)
from tests.samples import AUTHORITY, business_licence
from verifier.checks import verify
from verifier.demo import issue_demo
from verifier.verdict import Status

BUSINESS = catalogue().get("business-licence")


@pytest.fixture(params=["embedded-node", "anvil"])
def chain_url(request):
    """Each scenario runs once against each kind of node."""
    if request.param == "anvil":
        return request.getfixturevalue("anvil_url")
    return request.getfixturevalue("embedded_node_url")


def connected(url, label):
    """A chain handle, a governor and an agency key; funded where the node needs it."""
    faucet = ANVIL_FAUCET_KEY if "anvil" in label else None
    chain = connect(url, faucet_key=faucet)
    governor, agency = key_for(f"{label}-governor"), key_for(f"{label}-agency")
    if chain.faucet is not None:  # anvil: funding is the operator's job
        for account in (governor, agency):
            chain.fund(account.address, 10**20)
    return chain, governor, agency


def test_issue_verify_revoke_verify(chain_url, request, tmp_path):
    label = request.node.callspec.id
    chain, governor, agency = connected(chain_url, f"e2e-{label}-{tmp_path.name}")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, [BUSINESS.code])
    registry.register_agency(governor, AGENCY_CODE, AUTHORITY, agency.address, [BUSINESS.code])
    batch = issue_demo(
        registry, agency, BUSINESS, [business_licence(i) for i in range(20)], tmp_path / "out"
    )
    index = RegistryIndex(tmp_path / "index.sqlite", registry)
    index.catch_up()

    verdicts = [verify(d, index) for d in batch.documents]
    assert {v.status for v in verdicts} == {Status.VALID}
    assert verdicts[0].block_height == batch.block_number

    # An EL2: payload is read with the verifier's own chain and registry.
    deployment = {"chain_id": index.chain_id, "registry": index.registry_address}
    presentation = decode_payload(encode_payload(present(batch.documents[3], [])), **deployment)
    assert verify(presentation, index).status is Status.VALID

    revoke(registry, agency, batch.documents[3], Reason.COURT_ORDER)
    index.catch_up()  # what a verifier does before each answer
    assert verify(batch.documents[3], index).status is Status.REVOKED
    assert verify(presentation, index).status is Status.REVOKED
    assert verify(batch.documents[4], index).status is Status.VALID

    result = subprocess.run(
        [
            str(ELICENCE),
            "verify",
            str(batch.paths[3]),
            "--chain",
            chain_url,
            "--registry",
            registry.address,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 1 and "REVOKED" in result.stdout


def test_concurrent_senders_with_one_key_all_land(chain_url, request, tmp_path):
    label = request.node.callspec.id
    chain, governor, agency = connected(chain_url, f"nonce-{label}-{tmp_path.name}")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, [BUSINESS.code])
    registry.register_agency(governor, AGENCY_CODE, AUTHORITY, agency.address, [BUSINESS.code])
    roots = [bytes([0x80 + i]) * 16 for i in range(12)]
    failures: list[BaseException] = []

    def anchor_some(part):
        try:
            for root in part:
                registry.anchor(agency, root, BUSINESS.code, 1)
        except BaseException as exc:  # collected, and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=anchor_some, args=(roots[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert all(registry.anchor_of(root) is not None for root in roots)


def test_a_node_of_another_chain_is_named(chain_url):
    with pytest.raises(WrongChain, match="expected 1"):
        connect(chain_url, expected_chain_id=1)


def test_an_address_without_a_registry_is_named(chain_url):
    with pytest.raises(RegistryNotFound):
        Registry.at(connect(chain_url), "0x000000000000000000000000000000000000dEaD")


@pytest.mark.anvil
def test_an_unfunded_key_on_a_real_network_gets_insufficient_funds(anvil_url, tmp_path):
    chain, governor, _ = connected(anvil_url, f"funds-anvil-{tmp_path.name}")
    broke = key_for(f"broke-{tmp_path.name}")
    with pytest.raises(InsufficientFunds, match="insufficient funds"):
        Registry.deploy(chain, broke)
    assert Registry.deploy(chain, governor).address  # the funded key still can


def test_index_says_could_not_check_while_the_node_is_down_and_recovers(tmp_path):
    node = NodeProcess(tmp_path / "home").start()
    try:
        chain, governor, agency = connected(node.url, f"down-{tmp_path.name}")
        registry = Registry.deploy(chain, governor)
        index = RegistryIndex(tmp_path / "index.sqlite", registry)
        index.catch_up()
        node.stop()
        with pytest.raises(ChainUnreachable):
            index.catch_up()
        node.start()
        publish_types(registry, governor, [1])
        registry.register_agency(governor, AGENCY_CODE, AUTHORITY, agency.address, [1])
        assert index.catch_up() == chain.block_number()
        assert index.agency(1).name == AUTHORITY
    finally:
        if node.process is not None:
            node.stop()


@pytest.mark.anvil
def test_verifier_replicas_with_their_own_indexes_agree(anvil_url, tmp_path):
    """Two verifier replicas (one index each, one with a confirmation depth) read the same
    chain and give the same verdicts once the change is confirmed."""
    chain, governor, agency = connected(anvil_url, f"replicas-anvil-{tmp_path.name}")
    registry = Registry.deploy(chain, governor)
    publish_types(registry, governor, [BUSINESS.code])
    registry.register_agency(governor, AGENCY_CODE, AUTHORITY, agency.address, [BUSINESS.code])
    batch = issue_demo(
        registry, agency, BUSINESS, [business_licence(i) for i in range(3)], tmp_path / "out"
    )
    replica_a = RegistryIndex(
        tmp_path / "a.sqlite", Registry.at(connect(anvil_url), registry.address)
    )
    replica_b = RegistryIndex(
        tmp_path / "b.sqlite", Registry.at(connect(anvil_url), registry.address), confirmations=2
    )
    revoke(registry, agency, batch.documents[0], Reason.FRAUD)
    replica_a.catch_up()
    replica_b.catch_up()
    assert verify(batch.documents[0], replica_a).status is Status.REVOKED
    assert verify(batch.documents[0], replica_b).status is Status.NOT_ANCHORED  # not yet confirmed
    for i in range(2):  # two more blocks confirm it
        registry.anchor(agency, bytes([0xA0 + i]) * 16, BUSINESS.code, 1)
    replica_b.catch_up()
    assert verify(batch.documents[0], replica_b).status is Status.REVOKED
