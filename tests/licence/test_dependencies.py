"""The licence format stands alone: importing it loads nothing of the chain, of
issuing or verifying, of images, or compiled code of ours."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FORBIDDEN = (
    "web3",
    "eth_",
    "ledger",
    "issuer",
    "verifier",
    "contracts",
    "PIL",
    "zxingcpp",
    "segno",
)
MODULES = [
    "licence",
    "licence.canonical",
    "licence.catalogue",
    "licence.catalogue_rules",
    "licence.credit_code",
    "licence.digest",
    "licence.document",
    "licence.errors",
    "licence.fields",
    "licence.merkle",
    "licence.payload",
    "licence.presentation",
    "licence.seal",
    "licence.reasons",
    "licence.statuses",
]


def test_every_module_of_the_package_is_listed():
    found = {f"licence.{p.stem}" for p in (ROOT / "licence").glob("*.py")} - {"licence.__init__"}
    assert found | {"licence"} == set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_importing_the_format_loads_no_chain_issuer_verifier_image_or_c_module(module):
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # A fresh interpreter: this test process has imported everything already.
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    offending = [
        name
        for name in loaded
        if name.split(".")[0].startswith(FORBIDDEN) or name.endswith("._wrap")
    ]
    assert offending == []


def test_a_full_round_trip_works_in_a_fresh_process_with_only_the_format():
    # Decoding a payload and parsing its document exercises every lazy path.
    probe = (
        "import sys, json\n"
        "from licence.catalogue import catalogue\n"
        "from licence.document import AnchorRef, LicenceDocument\n"
        "from licence.payload import decode_payload, encode_payload\n"
        "from licence.presentation import present\n"
        "from tests.samples import business_licence\n"
        "t = catalogue().get('business-licence')\n"
        "doc = LicenceDocument(t, business_licence(1), AnchorRef(1, '0x' + 'ab' * 20,"
        " bytes(16), ()), secret=bytes(16))\n"
        "text = encode_payload(present(doc, []))\n"
        "back = decode_payload(text, chain_id=1, registry='0x' + 'ab' * 20)\n"
        "assert back.licence_id == doc.licence_id\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout)
    assert [n for n in loaded if n.split(".")[0].startswith(FORBIDDEN)] == []
