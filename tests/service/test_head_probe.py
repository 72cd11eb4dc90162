"""The service's head probe (eth_blockNumber over its own HTTP/1.1 connection): the
answers of real nodes, the forms of HTTP answer it must read, and the ones it refuses."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ledger.chain import connect
from ledger.errors import ChainUnreachable
from verifier.service.live import HeadProbe, _read_response

JSON = b'{"jsonrpc":"2.0","id":1,"result":"0x2a"}'


def read(raw: bytes) -> tuple[int, bytes, bool]:
    async def go() -> tuple[int, bytes, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader)

    return asyncio.run(go())


def test_an_answer_with_a_content_length():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(JSON), JSON)
    assert read(raw) == (200, JSON, True)


def test_a_chunked_answer():
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (10, JSON[:10])
        + b"%x;ext=1\r\n%s\r\n" % (len(JSON) - 10, JSON[10:])
        + b"0\r\n\r\n"
    )
    assert read(raw) == (200, JSON, True)


def test_connection_close_and_http_1_0_are_not_kept():
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    assert read(raw) == (200, b"{}", False)
    assert read(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}")[2] is False
    assert read(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}")[2]


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n{}",  # neither a length nor chunks
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # cut short
    ],
)
def test_what_is_not_one_http_answer_is_refused(raw):
    with pytest.raises((ValueError, asyncio.IncompleteReadError)):
        read(raw)


def test_the_probe_reads_anvil_s_head(anvil_url):
    probe = HeadProbe(anvil_url)

    async def twice() -> list[int]:
        try:
            return [await probe(), await probe()]  # the second on the kept-alive connection
        finally:
            probe.close()

    assert asyncio.run(twice()) == [connect(anvil_url).block_number()] * 2


def test_a_node_that_does_not_answer_is_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        probe = HeadProbe(f"http://127.0.0.1:{port}")
        with pytest.raises(ChainUnreachable, match="no answer to eth_blockNumber"):
            asyncio.run(probe())


def test_a_node_answering_an_error_status_is_unreachable():
    async def go() -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            with pytest.raises(ChainUnreachable, match="HTTP 502"):
                await HeadProbe(f"http://127.0.0.1:{port}")()

    asyncio.run(go())
