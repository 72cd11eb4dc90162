"""`elicence snapshot seal-key new` and the SM2 co-signature from the command line: the
governor's SM2 key is made encrypted and private, pinned in its home; `snapshot export`
co-signs with it; `verify --snapshot` refuses a snapshot without the co-signature, or
co-signed by another key, when an SM2 key is pinned (flag, environment or home)."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess

import orjson

from issuer.batch import wrap_batch
from licence import seal
from licence.catalogue import catalogue
from tests.agency.conftest import PASSPHRASE, node_agency  # noqa: F401 (a fixture)
from tests.conftest import ELICENCE
from tests.samples import business_licence


def _run(home, *args, **env):
    merged = {
        **os.environ,
        "ELICENCE_HOME": str(home),
        "ELICENCE_PASSPHRASE": PASSPHRASE,
        "COLUMNS": "200",
        "NO_COLOR": "1",
        **env,
    }
    if "ELICENCE_GOVERNOR_SEAL_KEY" not in env:
        merged.pop("ELICENCE_GOVERNOR_SEAL_KEY", None)
    return subprocess.run(
        [str(ELICENCE), *args], capture_output=True, text=True, env=merged, check=False
    )


def test_governor_seal_key_co_signs_and_verifiers_pinning_it_refuse_others(
    node_agency,  # noqa: F811
    tmp_path,
):
    registry, agency = node_agency.registry, node_agency.key
    licence_type = catalogue().get("business-licence")
    batch = wrap_batch(
        licence_type,
        [business_licence(0)],
        chain_id=registry.chain.chain_id,
        registry=registry.address,
    )
    registry.anchor(agency, batch.root, licence_type.code, 1)
    licence = tmp_path / "valid.json"
    licence.write_bytes(batch.documents[0].to_bytes())
    home = node_agency.governor_home
    unsigned = tmp_path / "unsigned.snapshot"

    # Before the governor has an SM2 key: exported with a warning, chain key only.
    before = _run(home, "snapshot", "export", str(unsigned))
    assert before.returncode == 0, before.stderr
    assert "no governor SM2 key" in before.stderr
    assert orjson.loads(gzip.decompress(unsigned.read_bytes()))["signatures"]["sm2"] is None

    made = _run(home, "snapshot", "seal-key", "new")
    assert made.returncode == 0, made.stderr
    keystore = home / "keys" / "governor-seal.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert "crypto" in json.loads(keystore.read_text())  # encrypted, as the chain key is
    public = json.loads((home / "config.json").read_text())["governorSealKey"]
    assert public in made.stdout and len(public) == 128
    again = _run(home, "snapshot", "seal-key", "new")
    assert again.returncode == 2  # never replaces a key

    signed = tmp_path / "signed.snapshot"
    exported = _run(home, "snapshot", "export", str(signed))
    assert exported.returncode == 0, exported.stderr
    assert "and its SM2 key" in exported.stdout
    sm2 = orjson.loads(gzip.decompress(signed.read_bytes()))["signatures"]["sm2"]
    assert sm2["publicKey"] == public

    # The home pins its governor's SM2 key: a snapshot without the co-signature is refused.
    assert _run(home, "verify", str(licence), "--snapshot", str(signed)).returncode == 0
    refused = _run(home, "verify", str(licence), "--snapshot", str(unsigned))
    assert refused.returncode == 2
    assert "no SM2 co-signature" in refused.stderr

    # Pinned by flag or environment, another key's pin refuses the governor's snapshot.
    other = seal.public_key(seal.new_private_key()).hex()
    by_flag = _run(
        home, "verify", str(licence), "--snapshot", str(signed), "--governor-seal-key", other
    )
    assert by_flag.returncode == 2
    assert "not by the governor's SM2 key you pin" in by_flag.stderr
    by_env = _run(
        home,
        "verify",
        str(licence),
        "--snapshot",
        str(signed),
        ELICENCE_GOVERNOR_SEAL_KEY=other,
    )
    assert by_env.returncode == 2
    bad = _run(
        home, "verify", str(licence), "--snapshot", str(signed), "--governor-seal-key", "0x12"
    )
    assert bad.returncode == 2
    assert "--governor-seal-key" in bad.stderr
