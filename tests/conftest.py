"""Shared fixtures: a fresh embedded chain per test, the people on it, a deployed registry,
and (session-wide) a real anvil node over HTTP.

Keys are derived from fixed labels, so a failing test names the same addresses every
run. Every account the tests sign with is a plain local key funded from the chain's
faucet; none is an account the node holds.

The registry fixture publishes licence types 1, 2 and 3 of the shipped catalogue (an
agency can only be authorised for published types; ``publish_types``), then registers
its agencies:

| id | key                | code (GB 32100)      | name                         | types  |
|----|--------------------|----------------------|------------------------------|--------|
| 1  | ``agency_key``       | 11440304007556212D   | 深圳市福田区市场监督管理局   | {1, 2} |
| 2  | ``other_agency_key`` | 91310115000000001U   | 上海市浦东新区市场监督管理局 | {1, 3} |
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import Chain, Registry, Sent, connect

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
# The first dev account of anvil's default mnemonic ("test test ... junk"); public knowledge.
ANVIL_FAUCET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

AGENCY_ID = 1
AGENCY_CODE = "11440304007556212D"  # made up; its check characters are right
AGENCY_NAME = "深圳市福田区市场监督管理局"
AGENCY_TYPES = frozenset({1, 2})
OTHER_AGENCY_ID = 2
OTHER_AGENCY_CODE = "91310115000000001U"
OTHER_AGENCY_NAME = "上海市浦东新区市场监督管理局"
OTHER_AGENCY_TYPES = frozenset({1, 3})
FUNDING_WEI = 10**20  # 100 ether: far more than any test spends


def key_for(label: str) -> LocalAccount:
    """A deterministic test key for ``label``."""
    return Account.from_key(hashlib.sha256(f"elicence-test:{label}".encode()).digest())


def _funded(chain: Chain, label: str) -> LocalAccount:
    account = key_for(label)
    chain.fund(account.address, FUNDING_WEI)
    return account


@pytest.fixture
def chain() -> Chain:
    """A fresh in-process eth-tester chain (its faucet is a pre-funded tester account)."""
    return connect("embedded")


@pytest.fixture
def governor(chain: Chain) -> LocalAccount:
    """The key that deploys the registry and holds DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE."""
    return _funded(chain, "governor")


@pytest.fixture
def agency_key(chain: Chain) -> LocalAccount:
    """Signer of agency 1 (Haidian market regulation; licence types 1 and 2)."""
    return _funded(chain, "agency")


@pytest.fixture
def other_agency_key(chain: Chain) -> LocalAccount:
    """Signer of agency 2 (Pudong market regulation; licence types 1 and 3)."""
    return _funded(chain, "other-agency")


@pytest.fixture
def outsider(chain: Chain) -> LocalAccount:
    """A funded key the registry never authorises for anything."""
    return _funded(chain, "outsider")


def publish_types(
    registry: Registry, governor: LocalAccount, codes: Iterable[int] | None = None
) -> list[Sent]:
    """Publish every version of the shipped catalogue's types ``codes`` (None: all of
    them) that the registry lacks, so agencies can be authorised for them."""
    from licence.catalogue import catalogue

    wanted = None if codes is None else set(codes)
    return registry.publish_licence_types(
        governor, [t for t in catalogue() if wanted is None or t.code in wanted]
    )


@pytest.fixture
def registry(
    chain: Chain,
    governor: LocalAccount,
    agency_key: LocalAccount,
    other_agency_key: LocalAccount,
) -> Registry:
    """A registry deployed by ``governor`` with agencies 1 and 2 (see module docstring)."""
    deployed = Registry.deploy(chain, governor)
    publish_types(deployed, governor, AGENCY_TYPES | OTHER_AGENCY_TYPES)
    deployed.register_agency(governor, AGENCY_CODE, AGENCY_NAME, agency_key.address, AGENCY_TYPES)
    deployed.register_agency(
        governor, OTHER_AGENCY_CODE, OTHER_AGENCY_NAME, other_agency_key.address, OTHER_AGENCY_TYPES
    )
    return deployed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], timeout: float, what: str = "anvil"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """URL of a real anvil node (node_modules) on a free loopback port, for the session.

    Its first dev account (``ANVIL_FAUCET_KEY``) serves as faucet.
    """
    binary = ANVIL if ANVIL.exists() else shutil.which("anvil")
    if binary is None:
        pytest.skip(f"anvil binary missing ({ANVIL}); run npm ci")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, timeout=15)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


ELICENCE = Path(sys.executable).with_name("elicence")
CAST = REPO_ROOT / "node_modules" / "@foundry-rs" / "cast-linux-amd64" / "bin" / "cast"


class NodeProcess:
    """A real `elicence ledger serve` process on a free loopback port."""

    def __init__(self, home: Path, *, dev: bool = True, options: Sequence[str] = ()) -> None:
        # dev: the tests' random keys deploy and get gas without an operator's say-so.
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = ["--dev" if dev else "--no-dev", *options]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> NodeProcess:
        with (self.home.parent / f"{self.home.name}-node.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(ELICENCE),
                    "ledger",
                    "serve",
                    "--home",
                    str(self.home),
                    "--port",
                    str(self.port),
                    *self.options,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, self.process, timeout, "elicence ledger serve")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def node_process(tmp_path) -> Iterator[NodeProcess]:
    """A durable embedded node in its own home, stopped after the test."""
    node = NodeProcess(tmp_path / "home").start()
    try:
        yield node
    finally:
        if node.process is not None:
            node.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def embedded_node_url(tmp_path_factory) -> Iterator[str]:
    """URL of one embedded node shared by the session's integration tests."""
    node = NodeProcess(tmp_path_factory.mktemp("shared-node") / "home").start()
    try:
        yield node.url
    finally:
        node.stop()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own ELICENCE_HOME, so a developer's ~/.elicence never leaks in."""
    home = tmp_path_factory.mktemp("elicence-home")
    monkeypatch.setenv("ELICENCE_HOME", str(home))
    for name in (
        "ELICENCE_CHAIN",
        "ELICENCE_CHAIN_ID",
        "ELICENCE_REGISTRY",
        "ELICENCE_PASSPHRASE",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


def run_elicence(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `elicence` command as a user would, with a wide, colourless terminal."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [str(ELICENCE), *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


# A real PostgreSQL server for the session and a fresh database per test (tests/postgres.py).
from tests.postgres import postgres_server, postgres_url  # noqa: E402, F401
