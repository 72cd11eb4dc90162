"""QR images of licences and presentations, and reading a licence in any of its forms.

The payload itself, `EL1:` text, is the licence format's (licence/payload.py, which
encodes and decodes it); this module draws it as a QR image and reads it back from one.

Caps, checked before the work they protect (the payload's own are licence/payload.py's):
an image file at most 10 MB and 40 megapixels (16,384
pixels a side), checked from its header before its pixels are decoded, and decoded at
most 10 megapixels (a larger JPEG at a libjpeg scale of 1/2, 1/4 or 1/8; a larger PNG is
refused).

Images: QR model 2, error correction M, a quiet zone of 4 modules, 6 pixels per module,
so a version-v code is (4v + 25) * 6 px square (version 25: 750 px) and prints at 1 mm
per module at 150 dpi.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from licence.document import LicenceDocument, loads_document
from licence.errors import PayloadError
from licence.payload import MAX_PAYLOAD_CHARS, PREFIX, decode_payload

MAX_IMAGE_BYTES = 10 * 1000 * 1000
MAX_IMAGE_PIXELS = 40 * 1000 * 1000  # as declared in the header
MAX_IMAGE_SIDE = 16384
MIN_IMAGE_SIDE = 21  # a version-1 QR code without its quiet zone, one pixel per module
MAX_DECODED_PIXELS = 10 * 1000 * 1000  # what is decoded: larger JPEGs are scaled down
ERROR_CORRECTION = "M"
QUIET_ZONE = 4  # modules: the standard's, which zint adds (tests check the image size)
MODULE_PX = 6
# The mask pattern (ISO/IEC 18004 table 10) of every code drawn: fixed, which the standard
# allows an encoder, because scoring all eight took 1.4 of zint's 1.8 ms a code. Pattern 2
# scored closest to the best of the eight (3.6 % above it on average over 60 licences),
# and codes drawn with it read as well as zint's choice (docs/benchmarks.md, 2026-12-02).
DATA_MASK = 2
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_NONE, _PNG_UP = b"\x00", b"\x02"  # scanline filters: none; minus the row above


# Any "<letters/digits>:" start is taken for a payload, so that EL2: gets "unknown version".
_LOOKS_LIKE_PAYLOAD = re.compile(rb"[A-Za-z0-9]{1,8}:")


def load_any(data: bytes) -> LicenceDocument:
    """A document from JSON, an `EL1:` payload (white space trimmed), or a PNG/JPEG QR image."""
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        return decode_payload(decode_image(data))
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"{", b"[")):
        return loads_document(data)
    if not _LOOKS_LIKE_PAYLOAD.match(head):
        raise PayloadError(
            "unrecognised", "neither a JSON document, an EL1: payload nor a PNG/JPEG image"
        )
    if len(data) > MAX_PAYLOAD_CHARS * 2:  # leaves room for white space around a payload
        raise PayloadError("too-long", f"{len(data)} bytes is neither a document nor a payload")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PayloadError(
            "unrecognised", "neither a JSON document, an EL1: payload nor a PNG/JPEG image"
        ) from None
    return decode_payload(text.strip())


def qr_code(payload: str) -> Any:
    """The payload's QR symbol (zxing-cpp's writer, libzint) at error correction M.

    zint picks the smallest version, in C, with the mask DATA_MASK: 0.4 ms a code, where
    zint choosing the mask took 1.8 ms and segno, in Python, 33 ms (issuing draws one
    per licence).
    """
    import zxingcpp  # a native extension: loaded only when a code is drawn or read

    try:
        return zxingcpp.create_barcode(
            payload, zxingcpp.BarcodeFormat.QRCode, ec_level=ERROR_CORRECTION, data_mask=DATA_MASK
        )
    except ValueError as exc:  # zint: "Input too long for ECC level M, ..."
        detail = f"no QR code at error correction M holds it ({exc})"
        raise PayloadError("too-long", detail) from None


def qr_version(payload: str) -> int:
    """The QR version (1..40) a payload needs at error correction M."""
    side = int(qr_code(payload).to_image(scale=1, add_quiet_zones=False).shape[0])
    return (side - 17) // 4


def qr_png_bytes(payload: str) -> bytes:
    """The payload's QR code as a 1-bit grey PNG (size in the module docstring)."""
    # Written here rather than by Pillow's PNG encoder, 2.1 times faster at the same
    # compression (0.55 ms a code against 1.2): each module row is packed to bits and
    # widened once (by Pillow), and its MODULE_PX - 1 copies are "Up" scanlines, all
    # zeros, which deflate takes in long runs instead of searching them for matches.
    pixels = qr_code(payload).to_image(scale=1, add_quiet_zones=True)
    side = pixels.shape[0]
    modules = Image.frombuffer("L", (side, side), pixels, "raw", "L", 0, 1)
    rows = (
        modules.convert("1", dither=Image.Dither.NONE)
        .resize((side * MODULE_PX, side), Image.Resampling.NEAREST)
        .tobytes()
    )
    stride = len(rows) // side
    copies = (_PNG_UP + bytes(stride)) * (MODULE_PX - 1)
    scanlines = b"".join(
        _PNG_NONE + rows[start : start + stride] + copies for start in range(0, len(rows), stride)
    )
    width = side * MODULE_PX
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1-bit grey, no interlace
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines, 6))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(payload: str, path: Path) -> None:
    """Write the payload's QR code as a PNG image (see the module docstring for its size)."""
    _save(path, qr_png_bytes(payload))


def qr_svg(payload: str, path: Path) -> None:
    """Write the payload's QR code as an SVG image."""
    _save(path, qr_code(payload).to_svg(scale=MODULE_PX, add_quiet_zones=True).encode("utf-8"))


def decode_image(data: bytes) -> str:
    """The text of the QR code in a PNG or JPEG image (an `EL1:` one when there are several).

    Memory is bounded before any pixel is decoded: the header's size is checked first
    (a small file can declare a huge picture), a JPEG of more than MAX_DECODED_PIXELS is
    decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself (a QR code photographed at 40
    megapixels still has modules of many pixels at 10), and pixels are decoded straight
    to 8-bit grey.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise PayloadError("image-too-large", f"{len(data)} bytes; at most {MAX_IMAGE_BYTES}")
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    # Pillow's parsers run on hostile bytes and raise many kinds of error while reading
    # the header (ValueError for an oversized text or colour-profile chunk, OSError,
    # SyntaxError, struct.error, ...): every one means "not a readable image".
    except Exception:
        raise PayloadError("image", "not a readable PNG or JPEG image") from None
    with image:
        _check_size(*image.size)
        if image.format == "JPEG":
            _draft(image)
        elif image.width * image.height > MAX_DECODED_PIXELS:
            raise PayloadError(
                "image-too-large",
                f"{image.width}x{image.height} pixels; a PNG has at most {MAX_DECODED_PIXELS}",
            )
        try:
            gray = _grey(image)
        except Exception:  # the decoders' errors on damaged data, as above
            raise PayloadError("image", "the image data is damaged") from None
    import zxingcpp  # a native extension: loaded only when an image is read

    with gray:
        found = zxingcpp.read_barcodes(gray, formats=zxingcpp.barcode_formats_from_str("QRCode"))
    texts = [str(code.text) for code in found if code.valid]
    if not texts:
        raise PayloadError("no-qr", "no readable QR code in the image")
    ours = [t for t in texts if t.startswith(PREFIX)]
    return (ours or texts)[0]


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_SIDE:
        raise PayloadError(
            "image-too-large",
            f"{width}x{height} pixels; at most {MAX_IMAGE_PIXELS} pixels and "
            f"{MAX_IMAGE_SIDE} on a side",
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise PayloadError("no-qr", f"{width}x{height} pixels is too small to hold a QR code")


def _draft(image: Image.Image) -> None:
    # The smallest libjpeg scale-down that brings the picture under the cap; asking for
    # grey makes libjpeg skip the colour conversion (and two thirds of the memory).
    width, height = image.size
    scale = 1
    while (width // scale) * (height // scale) > MAX_DECODED_PIXELS and scale < 8:
        scale *= 2
    image.draft("L", (max(1, width // scale), max(1, height // scale)))
    if image.width * image.height > MAX_DECODED_PIXELS:
        raise PayloadError(
            "image-too-large",
            f"{width}x{height} pixels cannot be decoded under {MAX_DECODED_PIXELS}",
        )


def _grey(image: Image.Image) -> Image.Image:
    """The image as 8-bit grey on white (transparent pixels are background)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # convert("L") clips 16-bit values to 255, which turns dark grey white.
        scaled = image.point(lambda value: value / 256)
        with scaled:
            return scaled.convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        with image.convert("LA") as grey_alpha:
            white = Image.new("L", image.size, 255)
            white.paste(grey_alpha.getchannel("L"), mask=grey_alpha.getchannel("A"))
            return white
    return image.convert("L")


def _save(path: Path, image: bytes) -> None:
    from issuer.files import write_atomically

    # A QR image is made to be shown, unlike the documents: ordinary file permissions.
    write_atomically(path, image)  # the QR holds what the document holds: private
