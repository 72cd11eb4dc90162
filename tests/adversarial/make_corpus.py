"""Writes the seed corpus of hand-crafted hostile inputs (tests/adversarial/corpus/).

Run by hand when adding an input (`python -m tests.adversarial.make_corpus`); the files
are kept in the repository and every one is sent on every fuzz run. Layout:
corpus/<target>/<METHOD>__<path with _ for />/<what it is>.<kind>, where the kind says
how it is sent: .json a POST body as application/json, .http a raw request as is,
.png/.jpg/.bin the image part of a multipart form, .multipart a whole form body.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import base45
from PIL import Image

from tests.adversarial.fuzzing import (
    CORPUS,
    deep,
    field_part,
    http_request,
    image_part,
    multipart,
    png,
)

# Bodies of megabytes (the 413 cases) are made by the fuzz tests, not kept as files.
VERIFY = "service/POST__v1_verifications"
BATCH = "service/POST__v1_verifications_batch"
IMAGE = "service/POST__v1_verifications_image"
HOLDER = "service/POST__v1_holder_verifications"
NODE = "node/POST__"


def el1(raw: bytes) -> str:
    return "EL1:" + base45.b45encode(raw).decode()


def jpeg_declaring(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (16, 16), 255).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"\xff\xc0") + 5
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def files() -> dict[str, bytes]:
    qr_bomb = el1(zlib.compress(b"\x00" * 2_700_000, 9))
    cbor_nest = el1(zlib.compress(b"\x81" * 16_000 + b"\x00", 9))
    out: dict[str, bytes] = {
        # Item 1: nesting that overflows the C stack when parsed recursively.
        f"{VERIFY}/nested-arrays-80000.json": deep(80_000),
        f"{VERIFY}/nested-objects-40000.json": deep(40_000, "{"),
        f"{BATCH}/nested-arrays-80000.json": deep(80_000),
        f"{HOLDER}/nested-arrays-80000.json": deep(80_000),
        f"{VERIFY}/qr-inside-nested-arrays-5000.json": b'{"qr":' + deep(5000) + b"}",
        # Item 11: numbers and member names no decoder should choke on.
        f"{VERIFY}/number-5000-digits.json": b'{"qr":"EL1:","purpose":' + b"9" * 5000 + b"}",
        f"{VERIFY}/number-exponent-huge.json": b'{"document":{"format":1e999999}}',
        f"{VERIFY}/member-name-lone-surrogate.json": b'{"\\ud800":1}',
        f"{VERIFY}/purpose-lone-surrogate.json": b'{"qr":"EL1:","purpose":"\\udfff"}',
        f"{VERIFY}/purpose-control-characters.json": (
            b'{"qr":"EL1:","purpose":"a\\u0000\\u001b[2Jb"}'
        ),
        f"{VERIFY}/duplicate-members.json": b'{"qr":"EL1:","qr":"EL1:"}',
        f"{VERIFY}/not-utf8.json": b'{"qr":"\xff\xfe"}',
        f"{VERIFY}/utf16-with-bom.json": '{"qr":"EL1:"}'.encode("utf-16"),
        f"{VERIFY}/qr-zlib-bomb.json": json.dumps({"qr": qr_bomb}).encode(),
        f"{VERIFY}/qr-cbor-nested-16000-arrays.json": json.dumps({"qr": cbor_nest}).encode(),
        f"{VERIFY}/qr-base45-garbage.json": json.dumps({"qr": "EL1:" + "::::" * 900}).encode(),
        f"{VERIFY}/qr-base45-group-overflow.json": json.dumps({"qr": "EL1:" + ":::"}).encode(),
        f"{VERIFY}/document-deep-fields.json": b'{"document":{"fields":' + deep(3000, "{") + b"}}",
        f"{BATCH}/items-150-empty.json": json.dumps({"items": [{}] * 150}).encode(),
        f"{BATCH}/items-bombs.json": json.dumps({"items": [{"qr": qr_bomb}] * 40}).encode(),
        f"{HOLDER}/purpose-member-not-allowed.json": b'{"qr":"EL1:","purpose":"+2AA-"}',
        # Headers the body does not match.
        f"{VERIFY}/content-length-larger-than-body.http": (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{}"
        ),
        f"{VERIFY}/content-length-negative.http": (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{}"
        ),
        f"{VERIFY}/content-length-twice.http": (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nContent-Length: 2\r\nContent-Length: 90000000\r\n"
            b"Connection: close\r\n\r\n{}"
        ),
        f"{VERIFY}/chunked-size-overflow.http": (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b"fffffffffffffffffff\r\n{}\r\n0\r\n\r\n"
        ),
        f"{VERIFY}/chunked-and-content-length.http": (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        ),
        f"{VERIFY}/authorization-garbage.http": (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/json\r\nAuthorization: Bearer \xff\xfe\x00elk\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{}"
        ),
        f"{VERIFY}/content-type-charset-utf7.http": http_request(
            "POST",
            "/v1/verifications",
            b'{"qr":"EL1:","purpose":"+2AA-"}',
            [("Content-Type", "application/json; charset=utf-7")],
        ),
        # Item 2: the multipart purpose that decodes to a lone surrogate.
        f"{IMAGE}/purpose-utf7-lone-surrogate.multipart": multipart(
            [image_part(png(1, 1)), field_part("purpose", b"+2AA-", "utf-7")]
        ),
        f"{IMAGE}/purpose-unknown-charset.multipart": multipart(
            [image_part(png(1, 1)), field_part("purpose", b"abc", "x-no-such-charset")]
        ),
        f"{IMAGE}/parts-500.multipart": multipart(
            [field_part(f"f{i}", b"x") for i in range(500)] + [image_part(png(1, 1))]
        ),
        f"{IMAGE}/no-image-part.multipart": multipart([field_part("purpose", b"x")]),
        f"{IMAGE}/two-images.multipart": multipart([image_part(png(1, 1)), image_part(png(1, 1))]),
        # Item 7: images whose pixels cost far more than their bytes.
        f"{IMAGE}/png-1x100000.png": png(1, 100_000),
        f"{IMAGE}/png-100000x1.png": png(100_000, 1),
        f"{IMAGE}/png-6000x6000-zeros.png": png(6000, 6000, bit_depth=1),
        f"{IMAGE}/png-declares-65535x65535.png": png(65_535, 65_535, rows=b"\x00" * 64),
        f"{IMAGE}/png-truncated-idat.png": png(64, 64)[:60],
        f"{IMAGE}/jpeg-declares-65000x65000.jpg": jpeg_declaring(65_000, 65_000),
        f"{IMAGE}/jpeg-declares-6500x6500.jpg": jpeg_declaring(6500, 6500),
        f"{IMAGE}/png-magic-then-garbage.bin": b"\x89PNG\r\n\x1a\n" + b"\xff" * 200,
        f"{IMAGE}/png-1x1.png": png(1, 1),
        # The node (items 1 and 6).
        f"{NODE}/nested-arrays-120000.json": deep(120_000),
        f"{NODE}/nested-params-50000.json": b'{"jsonrpc":"2.0","id":1,"method":"eth_call","params":'
        + deep(50_000)
        + b"}",
        f"{NODE}/batch-101-calls.json": json.dumps(
            [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId", "params": []} for i in range(101)]
        ).encode(),
        f"{NODE}/method-lone-surrogate.json": (
            b'{"jsonrpc":"2.0","id":1,"method":"\\ud800","params":[]}'
        ),
        f"{NODE}/number-5000-digits.json": b'{"jsonrpc":"2.0","id":'
        + b"9" * 5000
        + b',"method":"eth_getBalance","params":["0x'
        + b"00" * 20
        + b'",'
        + b"1" * 5000
        + b"]}",
        f"{NODE}/get-logs-whole-chain-huge-range.json": json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_getLogs",
                "params": [{"fromBlock": "0x0", "toBlock": "0x" + "f" * 64}],
            }
        ).encode(),
        f"{NODE}/estimate-gas-from-random-address.json": json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_estimateGas",
                "params": [
                    {"from": "0x" + "5a" * 20, "to": "0x" + "00" * 20, "value": "0x" + "f" * 30}
                ],
            }
        ).encode(),
        f"{NODE}/send-raw-transaction-garbage.json": json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_sendRawTransaction",
                "params": ["0x" + "f8" * 3000],
            }
        ).encode(),
        f"{NODE}/content-length-larger-than-body.http": (
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\nConnection: close\r\n\r\n{}"
        ),
        f"{NODE}/chunked-size-overflow.http": (
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\nfffffffffffffffffff\r\n{}\r\n0\r\n\r\n"
        ),
        # Item 6: calls that hold the node (mining on demand, an endless loop).
        f"{NODE}/stall-evm-mine-a-million-blocks.json": json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": [1_000_000]}
        ).encode(),
        f"{NODE}/stall-eth-call-endless-loop.json": json.dumps(
            # init code JUMPDEST PUSH1 0 JUMP: loops until the gas runs out
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_call",
                "params": [{"data": "0x5b600056"}, "latest"],
            }
        ).encode(),
        f"{NODE}/stall-estimate-gas-endless-loop.json": json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_estimateGas",
                "params": [{"data": "0x5b600056"}],
            }
        ).encode(),
    }
    return out


def main() -> None:
    for name, data in files().items():
        path = CORPUS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"{len(files())} corpus files under {CORPUS}")


if __name__ == "__main__":
    main()
