"""Bodies an attacker sends to the verify service: JSON nested deep enough to overflow the
C stack, numbers and strings Python cannot hold or encode, and bodies over the limit.
Each gets a 4xx problem the client can read, is counted in /metrics, and the process
keeps answering the next good request."""

from __future__ import annotations

import http.client
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence
from tests.service.conftest import ServiceProcess, issued_on_node
from verifier.service.requests import MAX_JSON_DEPTH, MAX_NUMBER_CHARS, nested_deeper_than

PROBLEM = "application/problem+json"
PROBLEMS = "https://elicence.example/problems/"
JSON_ROUTES = ("/v1/verifications", "/v1/verifications/batch", "/v1/holder/verifications")
MB = 1000 * 1000


@pytest.fixture(scope="module")
def served(embedded_node_url, tmp_path_factory) -> Iterator[tuple[ServiceProcess, str]]:
    """A real `elicence serve` process, and the QR text of a licence it finds VALID."""
    folder = tmp_path_factory.mktemp("hostile")
    registry, _, batch = issued_on_node(embedded_node_url, folder / "licences", "hostile", 1)
    service = ServiceProcess(
        folder / "service-home",
        embedded_node_url,
        registry.address,
        env={"ELICENCE_ANONYMOUS_RATE": "1000", "ELICENCE_ANONYMOUS_BURST": "1000"},
    )
    service.start()
    try:
        yield service, encode_payload(present(batch.documents[0], []))
    finally:
        service.stop()


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict, str]:
    """POST with urllib, as an ordinary client would: (status, headers, body text)."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def assert_still_verifies(service: ServiceProcess, qr: str) -> None:
    assert service.process is not None and service.process.poll() is None
    status, _, text = post(f"{service.url}/v1/verifications", json.dumps({"qr": qr}).encode())
    assert status == 200, text
    assert json.loads(text)["status"] == "VALID"


def envelope(route: str, inner: bytes) -> bytes:
    """`inner` where each route reads a licence or its members."""
    if route == "/v1/verifications/batch":
        return b'{"items": [{"qr": ' + inner + b"}]}"
    return b'{"qr": ' + inner + b"}"


def nested(route: str, depth: int) -> bytes:
    """A body of `depth` levels in all: arrays inside the route's envelope."""
    inner = depth - (3 if route == "/v1/verifications/batch" else 1)
    return envelope(route, b"[" * inner + b"]" * inner)


@pytest.mark.slow
@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="100k-brackets"),
        pytest.param(b'{"qr": ' + b'{"a": ' * 20_000, id="20k-objects-in-a-member"),
        pytest.param(b'["\\"[", ' * 5 + b"[" * 100_000, id="brackets-after-strings"),
    ],
)
def test_deeply_nested_json_is_a_malformed_request_and_the_process_lives(served, route, body):
    service, qr = served
    status, headers, text = post(service.url + route, body)
    assert status == 400, text
    assert headers["content-type"] == PROBLEM
    problem = json.loads(text)
    assert problem["type"] == PROBLEMS + "malformed-request"
    assert f"deeper than {MAX_JSON_DEPTH}" in problem["detail"]
    assert_still_verifies(service, qr)


@pytest.mark.slow
@pytest.mark.parametrize("route", JSON_ROUTES)
def test_two_hundred_thousand_brackets_get_a_problem_on_every_json_route(served, route):
    service, qr = served
    status, headers, text = post(service.url + route, b"[" * 200_000)
    assert 400 <= status < 500, text
    assert headers["content-type"] == PROBLEM
    assert json.loads(text)["status"] == status
    assert_still_verifies(service, qr)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "size"),
    [
        ("/v1/verifications", 2 * MB),
        ("/v1/verifications", 20 * MB),
        ("/v1/holder/verifications", 2 * MB),
        ("/v1/verifications/batch", 20 * MB),
        ("/v1/verifications/image", 20 * MB),
    ],
)
def test_a_client_reads_the_413_problem_of_a_body_over_the_limit(served, route, size):
    service, qr = served
    kind = "multipart/form-data; boundary=x" if route.endswith("/image") else "application/json"
    status, headers, text = post(service.url + route, b" " * size, kind)
    assert status == 413
    assert headers["content-type"] == PROBLEM
    assert json.loads(text)["type"] == PROBLEMS + "payload-too-large"
    assert_still_verifies(service, qr)


@pytest.mark.slow
@pytest.mark.parametrize("route", ["/v1/verifications", "/v1/verifications/batch"])
def test_a_client_reads_the_413_problem_of_a_chunked_body_over_the_limit(served, route):
    service, qr = served
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=120)
    try:
        chunks = (b" " * 65_536 for _ in range(160))  # 10.5 MB, no Content-Length
        connection.request(
            "POST",
            route,
            body=chunks,
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        answer = connection.getresponse()
        assert answer.status == 413
        assert json.loads(answer.read())["type"] == PROBLEMS + "payload-too-large"
    finally:
        connection.close()
    assert_still_verifies(service, qr)


# In process: inputs that never crashed a process, but got 500 or a plain-text answer.

DIGITS = b"7" * 5_000
ODDITIES = [
    pytest.param(DIGITS, "number", id="5000-digit-integer"),
    pytest.param(b"-" + DIGITS, "number", id="5000-digit-negative-integer"),
    pytest.param(b"0." + DIGITS, "number", id="5000-digit-fraction"),
    pytest.param(b"1" * (MAX_NUMBER_CHARS + 1), "number", id="just-over-the-number-cap"),
    pytest.param(b"1e999", "number", id="number-beyond-float"),
    pytest.param(b'"\\ud800"', "surrogate", id="lone-high-surrogate-value"),
    pytest.param(b'"\\udfff"', "surrogate", id="lone-low-surrogate-value"),
    pytest.param(b'"\\ude00\\ud83d"', "surrogate", id="surrogates-in-the-wrong-order"),
    pytest.param(b'{"\\ud800": 1}', "surrogate", id="lone-surrogate-member-name"),
    pytest.param(b'["a", ["\\udbff"]]', "surrogate", id="lone-surrogate-nested"),
]


def metric(service, route: str, status: int) -> float:
    text = service.client.get("/metrics").text
    found = re.search(
        rf'^elicence_http_requests_total\{{method="POST",route="{re.escape(route)}",'
        rf'status="{status}"\}} (\S+)$',
        text,
        re.MULTILINE,
    )
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize(("inner", "named"), ODDITIES)
def test_json_python_cannot_hold_is_a_counted_malformed_request(service, route, inner, named):
    before = metric(service, route, 400)
    answer = service.post(route, envelope(route, inner))
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"] == PROBLEMS + "malformed-request"
    assert named in answer.json()["detail"]
    assert metric(service, route, 400) == before + 1


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_lone_surrogate_as_the_member_name_of_the_body_is_a_problem(service, route):
    answer = service.post(route, b'{"\\ud800": 1}')
    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM
    assert "surrogate" in answer.json()["detail"]


def test_a_surrogate_pair_is_text_like_any_other(service):
    batch = service.issue([business_licence(1)])
    qr = encode_payload(present(batch.documents[0], []))
    body = b'{"qr": "' + qr.encode() + b'", "purpose": "\\ud83d\\ude00 check"}'
    answer = service.post("/v1/verifications", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "VALID"


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_nesting_up_to_the_limit_is_read_and_one_more_level_is_refused(service, route):
    at_limit = service.post(route, nested(route, MAX_JSON_DEPTH))
    assert at_limit.status_code == 422  # JSON, but not the schema
    answer = service.post(route, nested(route, MAX_JSON_DEPTH + 1))
    assert answer.status_code == 400
    assert answer.json()["type"] == PROBLEMS + "malformed-request"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"qr": "' + b"[" * 200 + b'"}', id="brackets-inside-a-string"),
        pytest.param(b'{"qr": "\\\\' + b"[" * 200 + b'"}', id="after-an-escaped-backslash"),
        pytest.param(b'{"qr": "\\"' + b"{" * 200 + b'"}', id="after-an-escaped-quote"),
    ],
)
def test_brackets_inside_strings_do_not_count_as_nesting(service, body):
    answer = service.post("/v1/verifications", body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"] == PROBLEMS + "unusable-licence"


# The depth scan against the parser itself: json's C scanner counts each level it enters
# against the recursion limit, so under a limit that lets exactly DEPTH + SLACK levels
# through, a body the scan passes must never raise RecursionError, whatever the body
# (SLACK: raising JSONDecodeError at the deepest level runs a few Python frames more).
DEPTH = 8
SLACK = 3
PIECES = [
    *(b"[", b"]", b"{", b"}", b"[[[[", b"]]]]", b"[" * 12, b'{"a":', b'"a":['),
    *(b'"', b"\\", b'\\"', b'"\\""', b'["\\"",', b'"\\\\"', b"\\u", b"\\ud800"),
    *(b",", b":", b"1", b"a", b" ", b"\n"),
]


def _frames() -> int:
    frame, count = sys._getframe(), 0
    while frame is not None:
        frame, count = frame.f_back, count + 1
    return count


def _loads_under(body: bytes, limit: int) -> bool:
    """Whether json.loads recursed past `limit`."""
    previous = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(limit)
    except RecursionError:  # below the depth already reached: nothing could run
        return False
    try:
        json.loads(body)
    except RecursionError:
        return False
    except ValueError:
        pass
    finally:
        sys.setrecursionlimit(previous)
    return True


def _limit_for_depth() -> int:
    here = _frames()
    for extra in range(200):
        allowed = DEPTH + SLACK
        if _loads_under(b"[" * allowed + b"]" * allowed, here + extra):
            assert not _loads_under(b"[" * (allowed + 1) + b"]" * (allowed + 1), here + extra)
            return here + extra
    raise AssertionError("no recursion limit lets the parser through")


@settings(max_examples=2_000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_a_body_the_depth_scan_passes_never_recurses_deeper_in_the_parser(pieces):
    body = b"".join(pieces)
    limit = _limit_for_depth()
    if not nested_deeper_than(body, DEPTH):
        assert _loads_under(body, limit), body
