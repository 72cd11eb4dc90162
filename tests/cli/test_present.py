"""`elicence present`, run as a holder runs it: a real process, files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from issuer.batch import wrap_batch
from licence.catalogue import catalogue
from licence.document import loads_document
from licence.payload import decode_payload
from tests.conftest import run_elicence as run
from verifier.images import decode_image

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture(scope="module")
def licence_file(tmp_path_factory) -> Path:
    from tests.samples import business_licence

    business = catalogue().get("business-licence")
    (document,) = wrap_batch(
        business, [business_licence(4)], chain_id=1337, registry=REGISTRY
    ).documents
    path = tmp_path_factory.mktemp("present") / "licence.json"
    path.write_bytes(document.to_bytes())
    return path


def test_text_prints_the_payload_and_names_disclosed_and_hidden_fields(licence_file):
    result = run("present", str(licence_file), "--disclose", "registeredAddress", "--text")
    assert result.returncode == 0, result.stderr
    shown = decode_payload(result.stdout.strip(), chain_id=1337, registry=REGISTRY)
    assert "registeredAddress" in shown.fields
    assert shown.licence_id == loads_document(licence_file.read_bytes()).licence_id
    assert "disclosed: licenceNumber, holderName" in result.stderr
    assert "hidden: legalRepresentative" in result.stderr


def test_qr_png_is_written_and_scans_to_the_presentation(licence_file, tmp_path):
    out = tmp_path / "shown.png"
    result = run("present", str(licence_file), "--disclose", "businessScope", "--qr", str(out))
    assert result.returncode == 0, result.stderr
    assert "hidden: legalRepresentative" in result.stdout
    shown = decode_payload(decode_image(out.read_bytes()), chain_id=1337, registry=REGISTRY)
    assert "businessScope" in shown.fields and "legalRepresentative" in shown.hidden


def test_qr_svg_is_written(licence_file, tmp_path):
    out = tmp_path / "shown.svg"
    result = run("present", str(licence_file), "--qr", str(out))
    assert result.returncode == 0, result.stderr
    assert b"<svg" in out.read_bytes()


def test_without_outputs_the_presentation_json_goes_to_stdout(licence_file):
    result = run("present", str(licence_file))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert "secret" not in body and "salts" in body and "legalRepresentative" in body["hidden"]


def test_a_presentation_read_from_standard_input_can_hide_more(licence_file, tmp_path):
    first = run("present", str(licence_file), "--disclose", "businessScope,registeredAddress")
    out = tmp_path / "second.json"
    result = run(
        "present",
        "-",
        "--disclose",
        "registeredAddress",
        "--out",
        str(out),
        stdin=first.stdout.encode(),
    )
    assert result.returncode == 0, result.stderr
    assert "businessScope" in loads_document(out.read_bytes()).hidden


def test_a_payload_file_can_be_presented_again(licence_file, tmp_path, monkeypatch):
    payload = run("present", str(licence_file), "--disclose", "businessScope", "--text").stdout
    source = tmp_path / "payload.txt"
    source.write_text(payload)
    # An EL2: payload names no chain or registry: the holder's configured ones are used.
    monkeypatch.setenv("ELICENCE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ELICENCE_REGISTRY", REGISTRY)
    monkeypatch.setenv("ELICENCE_CHAIN_ID", "1337")
    result = run("present", str(source), "--text")
    assert result.returncode == 0, result.stderr
    shown = decode_payload(result.stdout.strip(), chain_id=1337, registry=REGISTRY)
    assert "businessScope" in shown.hidden


def test_an_el2_payload_file_without_a_configured_registry_exits_2_saying_so(
    licence_file, tmp_path, monkeypatch
):
    source = tmp_path / "payload.txt"
    source.write_text(run("present", str(licence_file), "--text").stdout)
    monkeypatch.setenv("ELICENCE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ELICENCE_REGISTRY", raising=False)
    monkeypatch.delenv("ELICENCE_CHAIN_ID", raising=False)
    result = run("present", str(source), "--text")
    assert result.returncode == 2
    assert "names no chain or registry" in result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--disclose", "shareholders"], "shareholders: is not a field of 营业执照"),
        (["--qr", "out.gif"], "must end in .png or .svg"),
    ],
)
def test_bad_option_exits_2_with_one_line(licence_file, args, words):
    result = run("present", str(licence_file), *args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_revealing_a_hidden_field_exits_2(licence_file, tmp_path, monkeypatch):
    first = run("present", str(licence_file), "--text").stdout
    source = tmp_path / "minimal.txt"
    source.write_text(first)
    monkeypatch.setenv("ELICENCE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ELICENCE_REGISTRY", REGISTRY)
    monkeypatch.setenv("ELICENCE_CHAIN_ID", "1337")
    result = run("present", str(source), "--disclose", "legalRepresentative")
    assert result.returncode == 2
    assert "can only hide more" in result.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"EL3:ABC", "prefix"), (b"{oops", "not JSON"), (b"\x89PNG\r\n\x1a\nxx", "image")],
)
def test_unusable_input_exits_2_naming_the_problem(tmp_path, content, words):
    bad = tmp_path / "bad"
    bad.write_bytes(content)
    result = run("present", str(bad))
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(tmp_path):
    result = run("present", str(tmp_path / "nowhere.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr
