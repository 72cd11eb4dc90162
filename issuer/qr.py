"""QR images of licences and presentations: drawing an `EL2:` payload (licence/payload.py)
as a PNG or SVG for printing and phones. Reading one back is the verifier's
(verifier/images.py).

Images: QR model 2, error correction M, a quiet zone of 4 modules, 6 pixels per module,
so a version-v code is (4v + 25) * 6 px square (version 25: 750 px) and prints at 1 mm
per module at 150 dpi.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image

from licence.errors import PayloadError

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


def _save(path: Path, image: bytes) -> None:
    from issuer.files import write_atomically

    # The code holds what the document holds (secret and personal fields): private, like it.
    write_atomically(path, image)
