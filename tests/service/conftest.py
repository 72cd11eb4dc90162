"""Fixtures for the verifier service: the app in process (TestClient) over the shared
in-process registry, and a real `elicence serve` process over a real embedded node.

The in-process app's index reads the same eth-tester chain the tests anchor and revoke
on, so a test can change the registry and verify at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from issuer.batch import WrappedBatch, wrap_batch
from issuer.manifest import IssuedBatch
from ledger.chain import connect
from ledger.registry import Registry
from licence.catalogue import catalogue
from licence.document import LicenceDocument
from licence.payload import encode_payload
from licence.presentation import present
from tests.conftest import (
    AGENCY_CODE,
    AGENCY_NAME,
    ELICENCE,
    _wait_for_port,
    free_port,
    key_for,
    publish_types,
)
from tests.samples import business_licence
from verifier.demo import issue_demo
from verifier.service.apikeys import ApiKeyStore
from verifier.service.app import create_app
from verifier.service.settings import Settings
from verifier.service.spool import move_spools


@dataclass
class Service:
    """The app in process, its registry and home, and helpers to issue and call."""

    client: TestClient
    registry: Registry
    agency: LocalAccount
    home: Path
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)

    def issue(self, rows, type_id: str = "business-licence") -> WrappedBatch:
        """Wrap and anchor rows as one batch of agency 1."""
        licence_type = catalogue().get(type_id)
        batch = wrap_batch(
            licence_type,
            rows,
            chain_id=self.registry.chain.chain_id,
            registry=self.registry.address,
        )
        self.registry.anchor(self.agency, batch.root, licence_type.code, len(batch.documents))
        return batch

    def key(self, name: str, **limits) -> str:
        """A new API key (created as the operator would, in the service's key file)."""
        store = ApiKeyStore(self.settings.service_dir / "apikeys.sqlite")
        try:
            _, key = store.create(name, **limits)
        finally:
            store.close()
        self.keys[name] = key
        return key

    def verify(self, document: LicenceDocument, *, key: str | None = None, **extra):
        """POST /v1/verifications with the document's minimal presentation as QR text."""
        body = {"qr": encode_payload(present(document, [])), **extra}
        return self.post("/v1/verifications", body, key=key)

    def post(self, path: str, body, *, key: str | None = None, headers=None):
        """POST JSON."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        return self.client.post(path, content=data, headers=sent)


def make_service(tmp_path: Path, registry: Registry, agency: LocalAccount, **settings) -> Service:
    home = tmp_path / "home"
    options = {
        "home": home,
        "anonymous_rate": 1000.0,
        "anonymous_burst": 1000,
        "web_root": tmp_path / "no-web",
        **settings,
    }
    configured = Settings(**options)
    client = TestClient(create_app(configured, registry=registry))
    return Service(client, registry, agency, home, configured)


@pytest.fixture
def service(tmp_path, registry, agency_key) -> Iterator[Service]:
    """The service in process over the shared registry (generous anonymous rate)."""
    made = make_service(tmp_path, registry, agency_key)
    with made.client:
        yield made


class ServiceProcess:
    """A real `elicence serve` process on a free loopback port."""

    def __init__(
        self,
        home: Path,
        chain_url: str,
        registry: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.home = home
        self.env = {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            str(ELICENCE),
            "serve",
            "--home",
            str(home),
            "--chain",
            chain_url,
            "--registry",
            registry,
            "--port",
            str(self.port),
            "--log-level",
            "info",
            *extra,
        ]
        self.log = home.parent / f"{home.name}-service.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        _wait_for_port(self.port, self.process, 60, "elicence serve")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
            self.process = None


def issued_on_node(
    url: str, folder: Path, name: str, count: int
) -> tuple[Registry, LocalAccount, IssuedBatch]:
    """A registry deployed on the node at `url`, one agency, and `count` business licences
    it issued and anchored (documents under `folder`); `name` seeds the keys."""
    chain = connect(url)
    governor, agency = key_for(f"{name}-governor"), key_for(f"{name}-agency")
    registry = Registry.deploy(chain, governor)  # the node tops the keys up
    publish_types(registry, governor, [1])
    registry.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency.address, [1])
    batch = issue_demo(
        registry,
        agency,
        catalogue().get("business-licence"),
        [business_licence(i) for i in range(count)],
        folder,
    )
    return registry, agency, batch


def move_all_at_once(logs: list) -> None:
    """Every log's mover moves the home's spools, all starting together, each in a thread."""
    start = threading.Barrier(len(logs))

    def mover(log) -> None:
        start.wait()
        move_spools(log, everything=True)

    threads = [threading.Thread(target=mover, args=(log,)) for log in logs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
