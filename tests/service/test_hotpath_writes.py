"""How the service's HTTP protocol writes answers (verifier.service.hotpath.JoinedWrites,
named in verifier.service.workers.SERVER_OPTIONS): an answer's head and body leave in
one write, and nothing else changes: keep-alive, streamed and chunked answers, large
answers, 100-continue and closing connections."""

from __future__ import annotations

import asyncio
import http.client
import threading
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from tests.conftest import free_port
from verifier.service.hotpath import JOIN_MAX, JoinedWrites
from verifier.service.workers import SERVER_OPTIONS

STREAMED_PIECES = 64
PIECE = b"x" * 65_536
WAIT_S = 30


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers as the service's routes do: small, streamed (the CSV export), echoed
    uploads and a closed connection."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(STREAMED_PIECES):
            await send({"type": "http.response.body", "body": PIECE, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"%d" % size if path == "/upload" else b"small answer"
    headers = [(b"content-length", b"%d" % len(body))]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Recording(asyncio.Transport):
    """A connection's transport that keeps what is written, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_an_answers_head_and_body_leave_in_one_write():
    config = uvicorn.Config(app, **SERVER_OPTIONS)
    config.load()

    async def exchange() -> list[bytes]:
        transport = Recording()
        protocol = config.http_protocol_class(
            config=config,
            server_state=ServerState(),
            app_state={},  # type: ignore[call-arg]
        )
        protocol.connection_made(transport)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        while not any(w.endswith(b"small answer") for w in transport.writes):
            await asyncio.sleep(0)
        protocol.connection_lost(None)
        return transport.writes

    writes = asyncio.run(exchange())
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b"\r\n\r\nsmall answer")


def test_pieces_above_the_limit_are_not_held_so_flow_control_still_applies():
    async def run() -> Recording:
        transport = Recording()
        joined = JoinedWrites(transport, asyncio.get_running_loop())
        joined.write(b"head")
        joined.write(b"y" * JOIN_MAX)  # head and piece pass the limit together: sent now
        assert transport.writes == [b"head" + b"y" * JOIN_MAX]
        joined.write(b"z" * (JOIN_MAX + 1))
        assert transport.writes[-1] == b"z" * (JOIN_MAX + 1)
        assert joined.get_write_buffer_size() == 0
        return transport

    asyncio.run(run())


def test_a_held_piece_is_sent_before_the_connection_closes_and_dropped_on_abort():
    async def run() -> tuple[Recording, Recording]:
        loop = asyncio.get_running_loop()
        closed, aborted = Recording(), Recording()
        first = JoinedWrites(closed, loop)
        first.write(b"last words")
        assert first.get_write_buffer_size() == len(b"last words")
        first.close()
        assert closed.writes == [b"last words"] and closed.closed
        second = JoinedWrites(aborted, loop)
        second.write(b"never sent")
        second.abort()
        await asyncio.sleep(0)
        return closed, aborted

    closed, aborted = asyncio.run(run())
    assert closed.writes == [b"last words"]
    assert aborted.writes == []


class Served:
    """`app` served by uvicorn with the service's options on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", **SERVER_OPTIONS
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server stopped before it started")
            self.thread.join(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_S)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT_S)


@pytest.fixture(scope="module")
def served():
    with Served() as running:
        yield running


def test_answers_on_one_kept_alive_connection_all_arrive_whole(served):
    connection = served.connection()
    try:
        for _ in range(3):
            connection.request("GET", "/")
            answer = connection.getresponse()
            assert (answer.status, answer.read()) == (200, b"small answer")
        connection.request("GET", "/stream")
        answer = connection.getresponse()
        assert answer.getheader("transfer-encoding") == "chunked"
        assert answer.read() == PIECE * STREAMED_PIECES
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"small answer"
    finally:
        connection.close()


def test_uploads_with_100_continue_and_closing_answers_are_served(served):
    connection = served.connection()
    try:
        upload = b"u" * 3_000_000
        connection.request("POST", "/upload", body=upload, headers={"Expect": "100-continue"})
        assert connection.getresponse().read() == b"3000000"
        connection.request("GET", "/close")
        answer = connection.getresponse()
        assert answer.getheader("connection") == "close"
        assert answer.read() == b"small answer"
    finally:
        connection.close()
