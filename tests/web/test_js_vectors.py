"""The web page's own implementation of the format (verifier/web/static/js/elformat.js)
against the shared vectors of tests/vectors/: the salts and commitments the page computes
with WebCrypto (SHA-256) and the vendored sm-crypto (SM3) are the vectors' bytes, in both
hash suites, and the EL1: payloads it writes decode, with the service's strict reader, to
the vectors' documents. The vendored SM3 itself gives GB/T 32905's examples. Run under
Node (the same WebCrypto and the vendored pako and sm-crypto the browser loads), so a
second implementation cannot drift from licence/."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from licence.document import parse_document
from licence.payload import decode_payload
from verifier.service.routers.catalogue import catalogue_json

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "verifier" / "web" / "static"
VECTORS = ROOT / "tests" / "vectors"

# Loads pako and sm-crypto's SM3 as the page's classic <script>s do (globals), then the
# page's module, and prints what it computes for every vector.
_RUNNER = r"""
import { readFileSync } from "node:fs";
import vm from "node:vm";

const [elformat, pako, sm3File, catalogueFile, commitmentsFile, payloadsFile, hashesFile] =
  process.argv.slice(2);
vm.runInThisContext(readFileSync(pako, "utf8"));
vm.runInThisContext(readFileSync(sm3File, "utf8"));
const source = Buffer.from(readFileSync(elformat, "utf8")).toString("base64");
const el = await import("data:text/javascript;base64," + source);
const types = new Map(
  JSON.parse(readFileSync(catalogueFile, "utf8")).types.map((t) => [t.id, t]),
);

const commitments = [];
for (const vector of JSON.parse(readFileSync(commitmentsFile, "utf8")).cases) {
  const secret = el.hexToBytes(vector.secret);
  const salts = {};
  const committed = {};
  for (const [name, value] of Object.entries(vector.fields)) {
    const salt = await el.saltOf(secret, name, vector.hashSuite);
    salts[name] = el.bytesToHex(salt);
    committed[name] = el.bytesToHex(await el.commitmentOf(name, value, salt, vector.hashSuite));
  }
  commitments.push({ salts, commitments: committed });
}

// The vendored SM3 on the published examples, whole (the suites use its first 16 bytes).
const sm3Hashes = JSON.parse(readFileSync(hashesFile, "utf8")).cases
  .filter((vector) => vector.hashSuite === "sm3-128")
  .map((vector) => {
    const message = el.hexToBytes(vector.messageHex);
    return "0x" + (vector.keyHex
      ? globalThis.sm3(message, { key: el.hexToBytes(vector.keyHex) })
      : globalThis.sm3(message));
  });

const payloads = JSON.parse(readFileSync(payloadsFile, "utf8")).cases.map((vector) =>
  el.encodePayload(vector.document, types.get(vector.document.type)),
);
console.log(JSON.stringify({ commitments, payloads, sm3Hashes }));
"""


def _hex(value: str) -> str:
    return value if value.startswith("0x") else "0x" + value


@pytest.fixture(scope="module")
def page_results(tmp_path_factory) -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run the web page's format code (scripts/_setup.sh)")
    runner = tmp_path_factory.mktemp("js") / "vectors.mjs"
    runner.write_text(_RUNNER, encoding="utf-8")
    # The types as the page gets them: GET /v1/catalogue's, as js/common.js hands them on.
    catalogue_file = runner.with_name("catalogue.json")
    types = catalogue_json()["licenceTypes"]
    catalogue_file.write_text(json.dumps({"types": types}, ensure_ascii=False), "utf-8")
    ran = subprocess.run(
        [
            node,
            str(runner),
            str(STATIC / "js" / "elformat.js"),
            str(STATIC / "vendor" / "pako" / "pako_deflate.umd.min.js"),
            str(STATIC / "vendor" / "sm-crypto" / "sm3.js"),
            str(catalogue_file),
            str(VECTORS / "commitments.json"),
            str(VECTORS / "payload.json"),
            str(VECTORS / "hashes.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    result: dict[str, object] = json.loads(ran.stdout)
    return result


def test_the_page_derives_the_salts_and_commitments_of_the_vectors(page_results):
    cases = json.loads((VECTORS / "commitments.json").read_text(encoding="utf-8"))["cases"]
    computed = page_results["commitments"]
    assert isinstance(computed, list) and len(computed) == len(cases)
    for vector, page in zip(cases, computed, strict=True):
        assert page["salts"] == {k: _hex(v) for k, v in vector["salts"].items()}
        assert page["commitments"] == {k: _hex(v) for k, v in vector["commitments"].items()}


def test_the_page_writes_payloads_the_service_reads_as_the_vectors_documents(page_results):
    cases = json.loads((VECTORS / "payload.json").read_text(encoding="utf-8"))["cases"]
    written = page_results["payloads"]
    assert isinstance(written, list) and len(written) == len(cases)
    for vector, payload in zip(cases, written, strict=True):
        assert decode_payload(payload) == parse_document(vector["document"]), vector["name"]


def test_the_pages_sm3_gives_the_gbt_32905_examples_and_openssls_hmac(page_results):
    cases = json.loads((VECTORS / "hashes.json").read_text(encoding="utf-8"))["cases"]
    expected = [c.get("hash", c.get("hmac")) for c in cases if c["hashSuite"] == "sm3-128"]
    assert page_results["sm3Hashes"] == expected
    assert "0x66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0" in expected


def test_the_vectors_hold_cases_in_both_hash_suites():
    for name in ("commitments", "payload"):
        cases = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))["cases"]
        suites = {
            parse_document(c["document"]).suite if "document" in c else c["hashSuite"]
            for c in cases
        }
        assert suites == {"sha256-128", "sm3-128"}, name
