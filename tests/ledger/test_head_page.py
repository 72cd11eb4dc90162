"""The embedded node's head page: what a verifier in the same home may read from it, and
every state of the page in which it must not be trusted (then the service asks over HTTP)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import struct
import subprocess
import time

import pytest
from web3 import Web3

from ledger import connect
from ledger.config import NODE_FOLDER
from ledger.head_page import (
    MAGIC,
    SIZE,
    STALE_S,
    HeadPage,
    HeadPublisher,
    head_page_path,
)
from tests.conftest import ELICENCE, NodeProcess, free_port, key_for

CHAIN_ID, PORT = 1337, 8545
URL = f"http://127.0.0.1:{PORT}"
RECIPIENT = Web3.to_checksum_address("0x" + "11" * 20)


@pytest.fixture
def path(tmp_path):
    return head_page_path(tmp_path)


@pytest.fixture
def publisher(path):
    page = HeadPublisher(path, chain_id=CHAIN_ID, address=("127.0.0.1", PORT))
    try:
        yield page
    finally:
        page.close()


def reader(path, *, chain_id=CHAIN_ID, url=URL):
    page = HeadPage.open(path, chain_id=chain_id, url=url)
    assert page is not None
    return page


def publisher_at(path, host="127.0.0.1"):
    return HeadPublisher(path, chain_id=CHAIN_ID, address=(host, PORT))


def test_a_reader_sees_each_head_the_node_publishes(path, publisher):
    page = reader(path)
    publisher.publish(41)
    assert page.head() == 41
    publisher.publish(42)
    assert page.head() == 42


def test_a_page_is_private_to_the_node_s_account(path, publisher):
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_nothing_is_trusted_before_the_first_head_is_published(path, publisher):
    assert reader(path).head() is None


@pytest.mark.parametrize(
    ("chain_id", "url"),
    [
        (CHAIN_ID + 1, URL),
        (CHAIN_ID, f"http://127.0.0.1:{PORT + 1}"),
        (CHAIN_ID, "http://[::1]:8545"),
    ],
    ids=["other-chain", "other-port", "other-address"],
)
def test_another_node_s_page_is_not_read(path, publisher, chain_id, url):
    publisher.publish(7)
    assert reader(path, chain_id=chain_id, url=url).head() is None


@pytest.mark.parametrize(
    ("bound", "url", "trusted"),
    [
        ("0.0.0.0", URL, True),  # every address: loopback too
        ("::", "http://localhost:8545", True),
        ("127.0.0.1", "http://localhost:8545", True),
        ("127.0.0.2", URL, False),  # another loopback address: maybe another node at URL
    ],
)
def test_a_page_is_read_only_for_the_address_the_node_answers_at(path, bound, url, trusted):
    publisher = publisher_at(path, bound)
    try:
        publisher.publish(8)
        assert (reader(path, url=url).head() == 8) is trusted
    finally:
        publisher.close()


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:8545", "http://10.0.0.5:8545", "http://node.example:8545"]
)
def test_a_chain_url_that_is_not_plain_http_on_loopback_never_reads_a_page(path, publisher, url):
    publisher.publish(3)
    assert HeadPage.open(path, chain_id=CHAIN_ID, url=url) is None


def test_a_stopped_node_s_page_is_not_trusted(path):
    publisher = publisher_at(path)
    page = reader(path)
    publisher.publish(9)
    publisher.close()
    assert page.head() is None


def test_a_page_that_is_no_longer_beaten_goes_stale_and_a_beaten_one_does_not(path):
    quiet = publisher_at(path)
    page = reader(path)
    quiet.publish(5)
    assert page.head() == 5
    time.sleep(STALE_S + 0.3)  # a node killed with -9 beats no more
    assert page.head() is None
    quiet.close()

    beaten = publisher_at(path)
    beaten.publish(6)
    beaten.start_beating()
    try:
        time.sleep(STALE_S + 0.3)
        assert page.head() == 6
    finally:
        beaten.close()


def test_a_restarted_node_s_head_reaches_a_reader_opened_before(path):
    page = reader_after(path, first_head=3)
    second = publisher_at(path)
    try:
        assert page.head() is None  # not published by the new node yet
        second.publish(11)
        assert page.head() == 11
    finally:
        second.close()


def reader_after(path, *, first_head):
    first = publisher_at(path)
    page = reader(path)
    first.publish(first_head)
    first.close()
    return page


def write_raw(path, *, sequence, head, beat):
    loopback = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])  # IPv4 mapped into IPv6
    raw = struct.pack("<8sQQQQQ16s", MAGIC, sequence, head, beat, CHAIN_ID, PORT, loopback)
    path.write_bytes(raw.ljust(SIZE, b"\0"))


def test_a_page_left_half_written_is_not_trusted(path):
    write_raw(path, sequence=7, head=99, beat=time.monotonic_ns())  # odd: mid-write
    assert reader(path).head() is None


def test_a_page_from_before_this_machine_started_is_not_trusted(path):
    # Written by a node before a reboot: its beat is later than this boot's clock.
    write_raw(path, sequence=8, head=99, beat=time.monotonic_ns() + 3_600 * 10**9)
    assert reader(path).head() is None


def test_a_fresh_well_formed_page_is_read(path):
    # The control for the two tests above: the same bytes, settled and beaten now.
    write_raw(path, sequence=8, head=99, beat=time.monotonic_ns())
    assert reader(path).head() == 99


@pytest.mark.parametrize(
    "content",
    [b"", b"ELHEAD01", b"NOTAPAGE" + b"\0" * (SIZE - 8), os.urandom(SIZE)],
    ids=["empty", "truncated", "wrong-magic", "random"],
)
def test_what_is_not_a_head_page_is_not_opened(path, content):
    path.write_bytes(content)
    assert HeadPage.open(path, chain_id=CHAIN_ID, url=URL) is None


def test_no_page_and_a_symbolic_link_are_not_opened(path, tmp_path, publisher):
    assert HeadPage.open(tmp_path / "absent.page", chain_id=CHAIN_ID, url=URL) is None
    link = tmp_path / "link.page"
    link.symlink_to(path)
    publisher.publish(3)
    assert HeadPage.open(link, chain_id=CHAIN_ID, url=URL) is None


def page_of(home, url):
    chain = connect(url)
    return HeadPage.open(head_page_path(home / NODE_FOLDER), chain_id=chain.chain_id, url=url)


def test_a_receipt_s_block_is_on_the_page_before_the_receipt_comes_back(node_process):
    page = page_of(node_process.home, node_process.url)
    assert page is not None
    chain = connect(node_process.url)
    for _ in range(3):
        sent = chain.transact(key_for("page-sender"), to=RECIPIENT, value=1)
        # Read after the receipt came back, as a verifier's request would be.
        assert page.head() is not None and page.head() >= sent.block_number
        assert page.head() == chain.block_number()


def test_a_node_stopped_or_killed_leaves_a_page_nobody_trusts(node_process):
    page = page_of(node_process.home, node_process.url)
    assert page is not None and page.head() is not None
    node_process.stop(signal.SIGTERM)
    assert page.head() is None  # at once: the node marked it stopped
    node_process.start()
    assert page.head() is not None  # the restarted node writes the same page
    node_process.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while page.head() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.head() is None


def test_a_taken_port_is_a_one_line_error(tmp_path):
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        done = subprocess.run(
            [str(ELICENCE), "ledger", "serve", "--home", str(tmp_path / "h"), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not head_page_path(tmp_path / "h" / NODE_FOLDER).exists()


def test_a_node_that_cannot_write_its_page_still_serves(tmp_path):
    home = tmp_path / "home"
    (home / NODE_FOLDER / "head.page").mkdir(parents=True)  # a page that cannot be made
    node = NodeProcess(home).start()
    try:
        assert connect(node.url).block_number() >= 0
        assert page_of(home, node.url) is None  # verifiers in this home will ask instead
    finally:
        node.stop(signal.SIGKILL)
    log = (tmp_path / "home-node.log").read_text()
    assert "no head page" in log and "Traceback" not in log
