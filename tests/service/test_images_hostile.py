"""Hostile and unusual images on POST /v1/verifications/image: each gets a verdict (when
its QR code is readable) or a 4xx problem naming the reason, never a 500, and the pixels
decoded stay bounded whatever the header declares."""

from __future__ import annotations

import io
import struct
import threading
import zlib

import pytest
from PIL import Image

from issuer.qr import qr_png_bytes
from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence
from verifier.images import MAX_DECODED_PIXELS
from verifier.service.routers import verifications

PROBLEM = "application/problem+json"
ROUTE = "/v1/verifications/image"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, *, bit_depth: int = 8, extra: bytes = b"") -> bytes:
    """A grey PNG written by hand, so its header can say what an encoder would refuse."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    row = b"\0" + b"\xff" * ((width * bit_depth + 7) // 8)
    pixels = zlib.compress(row * height, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", pixels)
        + _chunk(b"IEND", b"")
    )


def _saved(image: Image.Image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def _post(service, data: bytes, name: str = "photo.png"):
    kind = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
    return service.client.post(ROUTE, files={"image": (name, data, kind)})


def _qr_image(service) -> Image.Image:
    """The QR code of a freshly anchored licence's minimal presentation, in grey."""
    batch = service.issue([business_licence(40)])
    payload = encode_payload(present(batch.documents[0], []))
    return Image.open(io.BytesIO(qr_png_bytes(payload))).convert("L")


_SMALL = _png(600, 600)
HOSTILE = {
    "one pixel wide and 100,000 tall": (_png(1, 100_000), "image-too-large"),
    "100,000 wide and one pixel tall": (_png(100_000, 1), "image-too-large"),
    "too thin for a QR code": (_png(10, 4000), "no-qr"),
    "truncated": (_SMALL[: len(_SMALL) // 2], "image"),
    "signature only": (b"\x89PNG\r\n\x1a\n", "image"),
    "JPEG marker only": (b"\xff\xd8\xff\xe0" + b"\0" * 20, "image"),
    # 36 megapixels of 1-bit white in 11 KB: 36 MB once decoded, more in the QR reader.
    "decompression bomb": (_png(6000, 6000, bit_depth=1), "image-too-large"),
    "over 40 megapixels": (_png(8000, 8000, bit_depth=1), "image-too-large"),
    "huge colour profile chunk": (
        _png(100, 100, extra=_chunk(b"iCCP", b"p\0\0" + zlib.compress(b"\0" * 20_000_000, 9))),
        "image",
    ),
    "huge compressed text chunk": (
        _png(100, 100, extra=_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * 20_000_000, 9))),
        "image",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_image_is_a_problem_naming_the_reason(service, name):
    data, reason = HOSTILE[name]
    answer = _post(service, data)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["type"].endswith("/unusable-licence")
    assert body["reason"] == reason


def test_png_over_the_decoded_pixel_cap_is_refused_before_decoding(service):
    side = int(MAX_DECODED_PIXELS**0.5) + 10
    answer = _post(service, _png(side, side, bit_depth=1))
    assert answer.status_code == 422
    assert answer.json()["reason"] == "image-too-large"


def _cmyk_jpeg(qr: Image.Image) -> bytes:
    return _saved(qr.convert("CMYK"), "JPEG", quality=95)


def _palette_png(qr: Image.Image) -> bytes:
    return _saved(qr.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def _sixteen_bit_png(qr: Image.Image) -> bytes:
    # Dark grey modules (not black) on light grey: read as 8-bit by clipping, every
    # module would turn white.
    light, dark = struct.pack("<H", 60000), struct.pack("<H", 5000)
    words = b"".join(light if v else dark for v in qr.tobytes())
    return _saved(Image.frombytes("I;16", qr.size, words), "PNG")


def _transparent_png(qr: Image.Image) -> bytes:
    # Black modules on a transparent background whose colour is black, as drawing
    # programs export them: only the alpha channel tells modules from background.
    alpha = qr.point(lambda v: 0 if v else 255)
    image = Image.merge("RGBA", [Image.new("L", qr.size, 0)] * 3 + [alpha])
    return _saved(image, "PNG")


def _large_jpeg(qr: Image.Image) -> bytes:
    # 12 megapixels: over the decoding cap, so libjpeg decodes it at half size.
    photo = Image.new("L", (4000, 3000), 200)
    photo.paste(qr.resize((1800, 1800), Image.Resampling.NEAREST), (1100, 600))
    return _saved(photo, "JPEG", quality=85)


@pytest.mark.parametrize(
    "make",
    [_cmyk_jpeg, _palette_png, _sixteen_bit_png, _transparent_png, _large_jpeg],
    ids=["CMYK JPEG", "palette PNG", "16-bit PNG", "transparent PNG", "12 MP JPEG"],
)
def test_readable_qr_code_in_any_colour_mode_gets_a_verdict(service, make):
    answer = _post(service, make(_qr_image(service)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "VALID"


def test_images_beyond_the_decoding_queue_are_refused_not_queued(service, monkeypatch):
    gate = verifications.DecodeGate(slots=1, queue=0)
    monkeypatch.setattr(verifications, "DECODES", gate)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        holding.wait()
        answer = _post(service, _png(600, 600))
    finally:
        release.set()
        holder.join()
    assert answer.status_code == 429
    assert answer.json()["type"].endswith("/rate-limited")
    assert answer.headers["retry-after"] == "1"
    # Once the slot is free, images are read again.
    assert _post(service, _png(600, 600)).json()["reason"] == "no-qr"
