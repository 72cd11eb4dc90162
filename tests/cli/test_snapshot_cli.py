"""`elicence snapshot export` and `elicence verify --snapshot`, as real processes: the
same verdicts as from the chain, with no chain; the snapshot's block on every verdict;
an old snapshot reported as stale (exit 4); an altered one refused (exit 2)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess

import orjson

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.reasons import Reason
from tests.agency.conftest import PASSPHRASE, node_agency  # noqa: F401 (a fixture)
from tests.conftest import ELICENCE
from tests.samples import business_licence


def _run(home, *args):
    env = {
        **os.environ,
        "ELICENCE_HOME": str(home),
        "ELICENCE_PASSPHRASE": PASSPHRASE,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=env, check=False
    )


def _verdict(result):
    body = json.loads(result.stdout)
    body.pop("checkedAt")
    body.pop("snapshot", None)
    return body


def test_snapshot_verdicts_equal_the_chains_and_name_their_block(node_agency, tmp_path):  # noqa: F811
    registry, agency = node_agency.registry, node_agency.key
    licence_type = catalogue().get("business-licence")
    rows = [
        business_licence(0),
        business_licence(1),
        business_licence(2, validUntil="2015-12-31", validFrom="2010-01-01"),
    ]
    batch = wrap_batch(
        licence_type, rows, chain_id=registry.chain.chain_id, registry=registry.address
    )
    registry.anchor(agency, batch.root, licence_type.code, len(rows))
    registry.revoke(agency, batch.root, batch.documents[1].licence_id, Reason.FRAUD)
    tampered = orjson.loads(batch.documents[0].to_bytes())
    tampered["fields"]["holderName"] = "别的公司"
    files = {}
    for name, raw in (
        ("valid", batch.documents[0].to_bytes()),
        ("tampered", orjson.dumps(tampered)),
        ("revoked", batch.documents[1].to_bytes()),
        ("expired", batch.documents[2].to_bytes()),
    ):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_bytes(raw)
    home = node_agency.governor_home
    snapshot = tmp_path / "trust.snapshot"
    exported = _run(home, "snapshot", "export", str(snapshot))
    assert exported.returncode == 0, exported.stderr
    expected = {"valid": 0, "tampered": 1, "revoked": 1, "expired": 1}
    for name, path in files.items():
        chain = _run(home, "verify", str(path), "--json")
        offline = _run(home, "verify", str(path), "--json", "--snapshot", str(snapshot))
        assert (chain.returncode, offline.returncode) == (expected[name],) * 2, offline.stderr
        assert _verdict(offline) == _verdict(chain)
    shown = _run(home, "verify", str(files["valid"]), "--snapshot", str(snapshot))
    assert shown.returncode == 0
    assert f"as of block {registry.chain.block_number()}," in shown.stdout

    stale = _run(
        home, "verify", str(files["valid"]), "--snapshot", str(snapshot), "--max-age", "0s"
    )
    assert stale.returncode == 4
    assert "stale snapshot" in stale.stdout
    assert (
        json.loads(
            _run(
                home,
                "verify",
                str(files["valid"]),
                "--json",
                "--snapshot",
                str(snapshot),
                "--max-age",
                "0s",
            ).stdout
        )["snapshot"]["stale"]
        is True
    )

    document = orjson.loads(gzip.decompress(snapshot.read_bytes()))
    document["body"]["statuses"] = []  # hide the revocation
    snapshot.write_bytes(gzip.compress(orjson.dumps(document)))
    refused = _run(home, "verify", str(files["revoked"]), "--snapshot", str(snapshot))
    assert refused.returncode == 2
    assert "does not match the snapshot's content" in refused.stderr
