"""The web page's own implementation of the format (verifier/web/static/js/elformat.js)
against the shared vectors of tests/vectors/: the salts and commitments the page computes
with WebCrypto (SHA-256) and the vendored sm-crypto (SM3) are the vectors' bytes, in both
hash suites, the EL2: payloads it writes decode, with the service's strict reader, to
the vectors' documents, and its EL2: reader (decodeEl2, for the offline page) reads the
vectors' payloads and refuses spoiled ones with the service's reasons. The vendored SM3
itself gives GB/T 32905's examples. Run under Node (the same WebCrypto and the vendored
pako and sm-crypto the browser loads), so a second implementation cannot drift from
licence/."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib
from pathlib import Path

import base45
import cbor2
import pytest

from licence.document import parse_document
from licence.errors import PayloadError
from licence.payload import DICTIONARY, MAX_CBOR_BYTES, decode_payload
from verifier.service.routers.catalogue import catalogue_json

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "verifier" / "web" / "static"
VECTORS = ROOT / "tests" / "vectors"

# Loads pako and sm-crypto's SM3 as the page's classic <script>s do (globals), then the
# page's module, and prints what it computes for every vector.
_RUNNER = r"""
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import vm from "node:vm";

const [elformat, pako, sm3File, catalogueFile, commitmentsFile, payloadsFile, hashesFile,
  inflateFile, spoiledFile] = process.argv.slice(2);
// Each pako half sets the global `pako` to itself: the inflate half kept aside for reading.
vm.runInThisContext(readFileSync(inflateFile, "utf8"));
const inflateHalf = globalThis.pako;
vm.runInThisContext(readFileSync(pako, "utf8"));
const deflateHalf = globalThis.pako;
vm.runInThisContext(readFileSync(sm3File, "utf8"));
const el = await import(pathToFileURL(elformat).href);
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

const vectors = JSON.parse(readFileSync(payloadsFile, "utf8")).cases;
const payloads = vectors.map((vector) =>
  el.encodePayload(vector.document, types.get(vector.document.type)),
);

// Reading: the vectors' EL2: payloads, then the spoiled ones (their reason codes).
globalThis.pako = inflateHalf;
const catalogue = { types: [...types.values()] };
const read = [];
for (const vector of vectors.filter((v) => v.payload.startsWith("EL2:"))) {
  const deployment = { chainId: vector.chainId, registry: vector.registry };
  read.push((await el.decodeEl2(vector.payload, catalogue, deployment)).json);
}
const refused = [];
for (const spoiled of JSON.parse(readFileSync(spoiledFile, "utf8"))) {
  try {
    const deployment = { chainId: spoiled.chainId, registry: spoiled.registry };
    await el.decodeEl2(spoiled.payload, catalogue, deployment);
    refused.push("read");
  } catch (exc) {
    refused.push(exc.code ?? String(exc));
  }
}
globalThis.pako = deflateHalf;
const dictionary = Buffer.from(el.DICTIONARY).toString("hex");
console.log(JSON.stringify({ commitments, payloads, sm3Hashes, read, refused, dictionary }));
"""


def _hex(value: str) -> str:
    return value if value.startswith("0x") else "0x" + value


def _spoiled() -> list[tuple[str, str, str]]:
    """(name, EL2: payload, the service's reason) for ways of spoiling a vector's payload."""
    case = next(
        c
        for c in json.loads((VECTORS / "payload.json").read_text("utf-8"))["cases"]
        if c["name"] == "sealed presentation"
    )
    text = case["payload"]
    data = base45.b45decode(text[4:])
    items = cbor2.loads(zlib.decompressobj(-15, zdict=DICTIONARY).decompress(data))

    def pack(value: object, raw: bytes | None = None) -> str:
        cbor = raw if raw is not None else cbor2.dumps(value, canonical=True)
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=DICTIONARY)
        return "EL2:" + base45.b45encode(compressor.compress(cbor) + compressor.flush()).decode()

    def spoil(index: int, value: object) -> str:
        return pack([*items[:index], value, *items[index + 1 :]])

    non_shortest = cbor2.dumps(items, canonical=True)
    cases = [
        ("bytes after the stream", "EL2:" + base45.b45encode(data + b"\0").decode(), "deflate"),
        ("cut short", "EL2:" + base45.b45encode(data[:-9]).decode(), "deflate"),
        ("bomb", pack(None, b"\0" * (MAX_CBOR_BYTES + 1)), "too-large"),
        ("non-shortest", pack(None, b"\x87\x18\x01" + non_shortest[2:]), "non-canonical"),
        ("type version 0", spoil(2, 0), "type-version"),
        ("type version 65536", spoil(2, 65536), "type-version"),
        ("array of five", pack(items[:5]), "layout"),
        ("keys one salt short", spoil(4, items[4][:-16]), "layout"),
        ("unknown suite", spoil(0, 7), "version"),
        ("bad base45", text[:-1] + "a", "base45"),
        ("other prefix", "EL3:" + text[4:], "prefix"),
    ]
    return cases


SPOILED = _spoiled()


@pytest.fixture(scope="module")
def page_results(tmp_path_factory) -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run the web page's format code (scripts/_setup.sh)")
    runner = tmp_path_factory.mktemp("js") / "vectors.mjs"
    runner.write_text(_RUNNER, encoding="utf-8")
    # The types as the page gets them: GET /v1/catalogue's, as js/common.js hands them on.
    # The page's modules beside the runner, as ES modules (a folder of "type": "module"),
    # so that elformat.js imports its dictionary as the browser does.
    for module in ("elformat.js", "payload-dictionary.js"):
        shutil.copy(STATIC / "js" / module, runner.with_name(module))
    runner.with_name("package.json").write_text('{"type": "module"}', "utf-8")
    catalogue_file = runner.with_name("catalogue.json")
    types = catalogue_json()["licenceTypes"]
    catalogue_file.write_text(json.dumps({"types": types}, ensure_ascii=False), "utf-8")
    spoiled_file = runner.with_name("spoiled.json")
    case = json.loads((VECTORS / "payload.json").read_text("utf-8"))["cases"][0]
    deployment = {"chainId": case["chainId"], "registry": case["registry"]}
    spoiled_file.write_text(
        json.dumps([{"payload": text, **deployment} for _, text, _ in SPOILED]), "utf-8"
    )
    ran = subprocess.run(
        [
            node,
            str(runner),
            str(runner.with_name("elformat.js")),
            str(STATIC / "vendor" / "pako" / "pako_deflate.umd.min.js"),
            str(STATIC / "vendor" / "sm-crypto" / "sm3.js"),
            str(catalogue_file),
            str(VECTORS / "commitments.json"),
            str(VECTORS / "payload.json"),
            str(VECTORS / "hashes.json"),
            str(STATIC / "vendor" / "pako" / "pako_inflate.umd.min.js"),
            str(spoiled_file),
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


def test_the_page_writes_el2_payloads_the_service_reads_as_the_vectors_documents(
    page_results,
):
    cases = json.loads((VECTORS / "payload.json").read_text(encoding="utf-8"))["cases"]
    written = page_results["payloads"]
    assert isinstance(written, list) and len(written) == len(cases)
    for vector, payload in zip(cases, written, strict=True):
        assert payload.startswith("EL2:")
        read = decode_payload(payload, chain_id=vector["chainId"], registry=vector["registry"])
        assert read == parse_document(vector["document"]), vector["name"]
        # pako with zlib's hash (legacyHash) writes zlib's stream: the same text.
        if vector["payload"].startswith("EL2:"):
            assert payload == vector["payload"], vector["name"]


def test_the_pages_dictionary_is_the_normative_file(page_results):
    assert bytes.fromhex(str(page_results["dictionary"])) == DICTIONARY


def test_the_pages_el2_reader_gives_the_vectors_documents(page_results):
    cases = json.loads((VECTORS / "payload.json").read_text(encoding="utf-8"))["cases"]
    el2 = [c for c in cases if c["payload"].startswith("EL2:")]
    read = page_results["read"]
    assert isinstance(read, list) and len(read) == len(el2) == 8
    for vector, document in zip(el2, read, strict=True):
        assert parse_document(document) == parse_document(vector["document"]), vector["name"]
        assert document["anchor"]["root"] == vector["root"]


@pytest.mark.parametrize("index", range(len(SPOILED)), ids=[name for name, _, _ in SPOILED])
def test_the_pages_el2_reader_refuses_what_the_service_refuses_with_its_reason(page_results, index):
    name, payload, reason = SPOILED[index]
    case = json.loads((VECTORS / "payload.json").read_text("utf-8"))["cases"][0]
    with pytest.raises(PayloadError) as caught:
        decode_payload(payload, chain_id=case["chainId"], registry=case["registry"])
    assert caught.value.reason == reason, name
    assert page_results["refused"][index] == reason, name


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
