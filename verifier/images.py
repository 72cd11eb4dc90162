"""Reading a licence from what a holder brings: JSON, `EL2:`/`EL1:` text, or a photo or scan of
its QR code (PNG or JPEG), as the verify service's image route and the `elicence verify`
and `present` commands do.

Caps, checked before the work they protect (the payload's own are licence/payload.py's):
an image file at most 10 MB and 40 megapixels (16,384 pixels a side), checked from its
header before its pixels are decoded, and decoded at most 10 megapixels (a larger JPEG at
a libjpeg scale of 1/2, 1/4 or 1/8; a larger PNG is refused).
"""

from __future__ import annotations

import io
import re

from PIL import Image

from licence.document import LicenceDocument, loads_document
from licence.errors import PayloadError
from licence.payload import MAX_PAYLOAD_CHARS, PREFIXES, decode_payload

MAX_IMAGE_BYTES = 10 * 1000 * 1000
MAX_IMAGE_PIXELS = 40 * 1000 * 1000  # as declared in the header
MAX_IMAGE_SIDE = 16384
MIN_IMAGE_SIDE = 21  # a version-1 QR code without its quiet zone, one pixel per module
MAX_DECODED_PIXELS = 10 * 1000 * 1000  # what is decoded: larger JPEGs are scaled down

# Any "<letters/digits>:" start is taken for a payload, so that EL3: gets "unknown prefix".
_LOOKS_LIKE_PAYLOAD = re.compile(rb"[A-Za-z0-9]{1,8}:")


def load_any(
    data: bytes, *, chain_id: int | None = None, registry: str | None = None
) -> LicenceDocument:
    """A document from JSON, an `EL2:`/`EL1:` payload (white space trimmed), or a PNG/JPEG
    QR image. `chain_id` and `registry` are the reader's own deployment, which an EL2:
    payload needs (licence.payload.decode_payload)."""
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        return decode_payload(decode_image(data), chain_id=chain_id, registry=registry)
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
    return decode_payload(text.strip(), chain_id=chain_id, registry=registry)


def decode_image(data: bytes) -> str:
    """The text of the QR code in a PNG or JPEG image (an `EL2:`/`EL1:` one when there are several).

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
    ours = [t for t in texts if t.startswith(PREFIXES)]
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
