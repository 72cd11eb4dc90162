"""verifier.client against a real `elicence serve` process (uvicorn on 127.0.0.1) over a
real embedded node: typed verdicts for every way in, typed errors for every problem,
retries that honour Retry-After and stop at their bound."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import base45
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from cli.app import app
from issuer.manifest import IssuedBatch
from issuer.qr import qr_png_bytes
from issuer.status import revoke
from ledger.registry import Registry
from licence.payload import PREFIX, base45_decode, encode_payload
from licence.presentation import present
from licence.reasons import Reason
from tests.conftest import NodeProcess, free_port
from tests.service.conftest import ServiceProcess, issued_on_node
from verifier.client import (
    AsyncVerifyClient,
    NotPermitted,
    ProblemError,
    RateLimited,
    RequestRefused,
    Unauthenticated,
    Unavailable,
    Unreachable,
    UnusableLicence,
    VerifyClient,
)
from verifier.verdict import Status

pytestmark = pytest.mark.slow


@dataclass
class Served:
    """A node, a registry with three licences (the third revoked), the service over it."""

    node: NodeProcess
    registry: Registry
    agency: LocalAccount
    batch: IssuedBatch
    service: ServiceProcess

    def qr(self, index: int) -> str:
        return encode_payload(present(self.batch.documents[index], []))

    def key(self, name: str, *options: str) -> str:
        """A new API key, made as the operator makes one."""
        made = CliRunner().invoke(
            app,
            ["apikey", "create", "--home", str(self.service.home), "--name", name, *options],
            env={"COLUMNS": "200", "NO_COLOR": "1"},
        )
        assert made.exit_code == 0, made.output
        return made.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("client")
    node = NodeProcess(folder / "chain").start()
    try:
        registry, agency, batch = issued_on_node(node.url, folder / "licences", "client", 3)
        revoke(registry, agency, batch.documents[2], Reason.ADMINISTRATIVE_PENALTY)
        service = ServiceProcess(folder / "service-home", node.url, registry.address).start()
        try:
            yield Served(node, registry, agency, batch, service)
        finally:
            service.stop()
    finally:
        if node.process is not None:
            node.stop()


def _corrupt(payload: str) -> str:
    compressed = bytearray(base45_decode(payload[len(PREFIX) :]))
    compressed[0] = 0xFF  # the first block's type is the reserved 11: inflate error -3
    return PREFIX + base45.b45encode(bytes(compressed)).decode("ascii")


def test_qr_text_gets_a_typed_valid_verdict(served: Served) -> None:
    with VerifyClient(served.service.url, api_key=served.key("广州市市场监督管理局审批系统")) as c:
        verdict = c.verify_qr(served.qr(0), purpose="审批-2026-000123")
    assert verdict.status is Status.VALID and verdict.is_valid
    assert verdict.failed_check is None
    assert [(x.name, x.outcome) for x in verdict.checks] == [
        (name, "passed") for name in ("integrity", "anchor", "issuer", "seal", "status", "validity")
    ]
    assert verdict.checks[0].code == "integrity.ok"
    assert verdict.checks[0].params["root"] == "0x" + served.batch.documents[0].anchor.root.hex()
    assert verdict.licence_id == "0x" + served.batch.documents[0].licence_id.hex()
    assert verdict.fields["holderName"] == served.batch.documents[0].fields["holderName"]
    assert verdict.issuer is not None and verdict.issuer.agency_id == 1
    assert verdict.anchor is not None and verdict.anchor.time.tzinfo is not None
    assert verdict.anchor.transaction and verdict.block_height >= verdict.anchor.block_number


def test_document_presentation_text_and_image_all_get_verdicts(served: Served) -> None:
    document = served.batch.documents[0]
    raw = served.batch.paths[0].read_bytes()
    with VerifyClient(served.service.url, api_key=served.key("ways-in")) as client:
        assert client.verify_document(document.to_json()).status is Status.VALID
        assert client.verify_document(raw).status is Status.VALID  # the file's own bytes
        shown = present(document, ["registeredCapital"])
        presented = client.verify_presentation(shown.to_json())
        assert presented.is_valid and "registeredCapital" in presented.fields
        assert "businessScope" in presented.hidden
        assert client.verify_text(raw.decode("utf-8")).is_valid
        assert client.verify_text(served.qr(1) + "\n").is_valid  # as a scanner gun types it
        assert client.verify_image(qr_png_bytes(served.qr(1))).is_valid


def test_a_revoked_licence_is_a_verdict_not_an_error(served: Served) -> None:
    with VerifyClient(served.service.url) as client:
        verdict = client.verify_qr(served.qr(2))
    assert verdict.status is Status.REVOKED and not verdict.is_valid
    failed = verdict.failed_check
    assert failed is not None and (failed.name, failed.code) == ("status", "status.revoked")
    assert failed.params["reason"] == int(Reason.ADMINISTRATIVE_PENALTY)
    assert verdict.status_reason == "行政处罚"


def test_batch_of_one_matter_is_typed_per_item(served: Served) -> None:
    with VerifyClient(served.service.url, api_key=served.key("batch")) as client:
        answer = client.verify_batch(
            [served.qr(0), served.batch.documents[1].to_json(), _corrupt(served.qr(1))],
            required_types=["business-licence"],
            same_holder=False,  # the samples are different enterprises
        )
    assert not answer.satisfied
    assert [(r.code, r.items) for r in answer.reasons] == [("invalid-item", (2,))]
    first, second, third = answer.items
    assert first.verdict is not None and first.verdict.is_valid
    assert second.verdict is not None and second.verdict.is_valid
    assert third.verdict is None and isinstance(third.problem, UnusableLicence)
    assert third.problem.reason == "deflate"


def test_an_unreadable_qr_is_a_typed_unusable_licence(served: Served) -> None:
    with VerifyClient(served.service.url) as client, pytest.raises(UnusableLicence) as refused:
        client.verify_qr(_corrupt(served.qr(0)))
    problem = refused.value
    assert isinstance(problem, RequestRefused) and isinstance(problem, ValueError)
    assert (problem.status, problem.kind, problem.reason) == (422, "unusable-licence", "deflate")
    assert "corrupt compressed data" in problem.detail


def test_a_document_that_is_not_json_is_refused_before_sending(served: Served) -> None:
    with VerifyClient(served.service.url) as client, pytest.raises(UnusableLicence):
        client.verify_document(b'{"format": "elicence/1", ')


def test_an_unknown_key_is_unauthenticated(served: Served) -> None:
    client = VerifyClient(served.service.url, api_key="elk_" + "x" * 43)
    with client, pytest.raises(Unauthenticated) as refused:
        client.verify_qr(served.qr(0))
    assert refused.value.status == 401 and isinstance(refused.value, PermissionError)


def test_a_key_for_other_types_is_not_permitted(served: Served) -> None:
    key = served.key("food-only", "--types", "food-business-licence")
    with (
        VerifyClient(served.service.url, api_key=key) as client,
        pytest.raises(NotPermitted) as refused,
    ):
        client.verify_qr(served.qr(0))
    assert (refused.value.status, refused.value.kind) == (403, "not-permitted")


def test_nothing_listening_is_unreachable_after_backing_off() -> None:
    waits: list[float] = []
    client = VerifyClient(f"http://127.0.0.1:{free_port()}", retries=2, sleep=waits.append)
    with client, pytest.raises(Unreachable):
        client.verify_qr("EL1:00")
    assert waits == [0.5, 1.0]  # no answer, so no Retry-After: backing off, twice


def test_chain_down_is_unavailable_not_a_verdict_once_retries_are_spent(served: Served) -> None:
    waits: list[float] = []
    served.node.stop()
    try:
        client = VerifyClient(served.service.url, retries=2, sleep=waits.append)
        with client, pytest.raises(Unavailable) as down:
            client.verify_qr(served.qr(0))
    finally:
        served.node.start()
    assert down.value.status == 503 and down.value.kind == "could-not-check"
    assert isinstance(down.value, ConnectionError)
    assert waits == [1.0, 1.0]  # the Retry-After: 1 the service sent, twice


def test_a_retry_after_the_chain_is_back_gets_the_verdict(served: Served) -> None:
    waits: list[float] = []

    def chain_comes_back(seconds: float) -> None:
        waits.append(seconds)
        served.node.start()

    served.node.stop()
    try:
        with VerifyClient(served.service.url, sleep=chain_comes_back) as client:
            verdict = client.verify_qr(served.qr(0))
    finally:
        if served.node.process is None:
            served.node.start()
    assert verdict.is_valid and waits == [1.0]


def test_async_client_verifies_and_retries_the_same_way(served: Served) -> None:
    waits: list[float] = []

    async def chain_comes_back(seconds: float) -> None:
        waits.append(seconds)
        served.node.start()

    async def run() -> tuple[Status, Status, Status]:
        async with AsyncVerifyClient(served.service.url, sleep=chain_comes_back) as client:
            valid, revoked = await asyncio.gather(
                client.verify_qr(served.qr(0)), client.verify_qr(served.qr(2))
            )
            served.node.stop()
            again = await client.verify_document(served.batch.documents[1].to_json())
            with pytest.raises(UnusableLicence):
                await client.verify_qr(_corrupt(served.qr(0)))
            return valid.status, revoked.status, again.status

    try:
        statuses = asyncio.run(run())
    finally:
        if served.node.process is None:
            served.node.start()
    assert statuses == (Status.VALID, Status.REVOKED, Status.VALID)
    assert waits == [1.0]  # the Retry-After: 1 of the 503


@pytest.fixture
def strict_service(served: Served, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A second service over the same registry that lets an anonymous address make one
    request and then one every 2 s."""
    env = {"ELICENCE_ANONYMOUS_RATE": "0.5", "ELICENCE_ANONYMOUS_BURST": "1"}
    service = ServiceProcess(
        tmp_path / "strict-home", served.node.url, served.registry.address, env=env
    ).start()
    try:
        yield service
    finally:
        service.stop()


def test_rate_limited_answer_is_retried_after_the_time_it_names(
    served: Served, strict_service: ServiceProcess
) -> None:
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with VerifyClient(strict_service.url, sleep=wait) as client:
        assert client.verify_qr(served.qr(0)).is_valid
        assert client.verify_qr(served.qr(1)).is_valid
    assert len(waits) == 1 and waits[0] >= 1  # the Retry-After the service sent, in seconds


def test_a_retry_after_beyond_the_bound_is_raised_at_once(
    served: Served, strict_service: ServiceProcess
) -> None:
    waits: list[float] = []
    with VerifyClient(strict_service.url, max_wait=0.1, sleep=waits.append) as client:
        client.verify_qr(served.qr(0))
        with pytest.raises(RateLimited) as limited:
            client.verify_qr(served.qr(1))
    assert waits == []  # not waited out, not retried early
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    assert isinstance(limited.value, ProblemError) and limited.value.status == 429


def test_problem_details_are_kept_whole(served: Served) -> None:
    with VerifyClient(served.service.url) as client, pytest.raises(UnusableLicence) as refused:
        client.verify_qr("EL1:NOT A PAYLOAD")
    problem = refused.value.problem
    assert problem["type"].endswith("/unusable-licence") and problem["status"] == 422
    assert json.dumps(problem)  # plain JSON, for the integrator's own logs


def test_the_example_integration_in_the_api_docs_runs(served: Served) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text("utf-8")
    section = docs.split("\n## A Python client\n", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    example = example.replace("https://verify.example.gd.gov.cn", served.service.url)
    scope: dict[str, object] = {"KEY": served.key("docs-example")}
    exec(compile(example, "docs/api.md", "exec"), scope)
    check_application = scope["check_application"]
    problems = check_application("2026-000123", [served.qr(0), _corrupt(served.qr(1))])  # type: ignore[operator]
    assert problems[0] == "第 2 个二维码无法读取，请申请人重新出示"
    assert "食品经营许可证" in problems[1], problems  # required, and not among them
