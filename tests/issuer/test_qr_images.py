"""QR images: drawn by zxing-cpp (libzint), read back through a photograph's troubles."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw, ImageFilter

from issuer.batch import wrap_batch
from issuer.qr import (
    MODULE_PX,
    QUIET_ZONE,
    qr_code,
    qr_png,
    qr_png_bytes,
    qr_svg,
    qr_version,
)
from licence.catalogue import catalogue
from licence.errors import PayloadError
from licence.payload import encode_payload
from licence.presentation import present
from tests.samples import business_licence
from verifier.images import MAX_IMAGE_PIXELS, decode_image, load_any

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture(scope="module")
def presentation():
    business = catalogue().get("business-licence")
    rows = [business_licence(i) for i in range(3)]
    licence = wrap_batch(business, rows, chain_id=1337, registry=REGISTRY).documents[0]
    return present(licence, [])


@pytest.fixture(scope="module")
def payload(presentation):
    return encode_payload(presentation)


@pytest.fixture(scope="module")
def png(payload, tmp_path_factory):
    path = tmp_path_factory.mktemp("qr") / "licence.png"
    qr_png(payload, path)
    return path.read_bytes()


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("L")


def as_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def test_png_has_quiet_zone_and_six_pixels_per_module(payload, png):
    side = (4 * qr_version(payload) + 17 + 2 * QUIET_ZONE) * MODULE_PX
    picture = image(png)
    assert picture.size == (side, side)
    border = QUIET_ZONE * MODULE_PX
    assert picture.crop((0, 0, side, border)).getextrema() == (255, 255)


def test_generated_png_decodes_to_the_presentation(payload, png, presentation):
    assert decode_image(png) == payload
    assert load_any(png, chain_id=1337, registry=REGISTRY) == presentation


def test_png_holds_exactly_the_modules_of_the_code_in_one_bit_grey(payload, png):
    # The PNG is written without Pillow's encoder: Pillow must read it (CRCs included) to
    # the very pixels of the code, each module a square of MODULE_PX pixels.
    Image.open(io.BytesIO(png)).verify()
    picture = Image.open(io.BytesIO(png))
    assert (picture.format, picture.mode, picture.info.get("interlace", 0)) == ("PNG", "1", 0)
    modules = qr_code(payload).to_image(scale=1, add_quiet_zones=True)
    side = modules.shape[0]
    expected = Image.frombuffer("L", (side, side), modules, "raw", "L", 0, 1).resize(
        (side * MODULE_PX, side * MODULE_PX), Image.Resampling.NEAREST
    )
    assert picture.size == expected.size
    assert picture.convert("L").tobytes() == expected.tobytes()


def test_codes_of_every_licence_of_a_batch_decode():
    # One mask for every code (DATA_MASK): the codes of many different payloads, full
    # licences as issuing writes them and minimal presentations, must all read back.
    business = catalogue().get("business-licence")
    rows = [business_licence(i) for i in range(40)]
    licences = wrap_batch(business, rows, chain_id=1337, registry=REGISTRY).documents
    for document in [*licences, *(present(licence, []) for licence in licences[:10])]:
        payload = encode_payload(document)
        assert decode_image(qr_png_bytes(payload)) == payload


def test_svg_is_written(payload, tmp_path):
    path = tmp_path / "licence.svg"
    qr_svg(payload, path)
    assert b"<svg" in path.read_bytes()


def test_rotated_90_degrees_decodes(payload, png):
    assert decode_image(as_png(image(png).rotate(90, expand=True))) == payload


def test_rotated_17_degrees_decodes(payload, png):
    turned = image(png).rotate(17, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    assert decode_image(as_png(turned)) == payload


def test_scaled_down_decodes_at_two_pixels_per_module_or_less(payload, png):
    picture = image(png)
    readable = []
    for tenths in range(40, 5, -2):  # 4.0 down to 0.6 pixels per module
        side = round(picture.width * tenths / 10 / MODULE_PX)
        small = picture.resize((side, side), Image.Resampling.LANCZOS)
        try:
            if decode_image(as_png(small)) == payload:
                readable.append(tenths / 10)
        except PayloadError:
            pass
    print(f"smallest readable size: {min(readable)} px per module")
    assert min(readable) <= 2.0


def test_blurred_decodes(payload, png):
    assert decode_image(as_png(image(png).filter(ImageFilter.GaussianBlur(2)))) == payload


def test_jpeg_quality_40_decodes(payload, png):
    buffer = io.BytesIO()
    image(png).save(buffer, "JPEG", quality=40)
    assert decode_image(buffer.getvalue()) == payload


def perspective_coefficients(target, source) -> list[float]:
    """Pillow's eight PERSPECTIVE coefficients mapping each target corner to its source."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    # Gauss-Jordan elimination: eight unknowns need no linear-algebra library.
    m = [[*row, b] for row, b in zip(rows, rhs, strict=True)]
    for col in range(8):
        pivot = max(range(col, 8), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(8):
            if r != col:
                factor = m[r][col] / m[col][col]
                m[r] = [a - factor * b for a, b in zip(m[r], m[col], strict=True)]
    return [m[i][8] / m[i][i] for i in range(8)]


def test_perspective_skewed_decodes(payload, png):
    picture = image(png)
    w, h = picture.size
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    seen_at = [(0.08 * w, 0.02 * h), (0.95 * w, 0.12 * h), (0.88 * w, 0.9 * h), (0.02 * w, h)]
    skewed = picture.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        perspective_coefficients(seen_at, corners),
        Image.Resampling.BICUBIC,
        fillcolor=255,
    )
    assert decode_image(as_png(skewed)) == payload


def test_qr_printed_on_an_a4_page_decodes(payload, png):
    page = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    for line in range(12):  # lines of "text" above the code
        draw.rectangle((120, 150 + 40 * line, 1100 - 37 * line, 170 + 40 * line), fill=30)
    page.paste(image(png), (240, 760))
    assert decode_image(as_png(page)) == payload


def test_image_without_a_qr_code_is_no_qr():
    with pytest.raises(PayloadError) as caught:
        decode_image(as_png(Image.new("L", (300, 300), 255)))
    assert caught.value.reason == "no-qr"


def test_damaged_image_is_refused():
    with pytest.raises(PayloadError) as caught:
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    assert caught.value.reason == "image"


def test_image_declaring_too_many_pixels_is_refused_before_decoding():
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    buffer = io.BytesIO()
    Image.new("1", (side, side), 1).save(buffer, "PNG")  # compresses to a few kilobytes
    with pytest.raises(PayloadError) as caught:
        decode_image(buffer.getvalue())
    assert caught.value.reason == "image-too-large"


def test_oversized_image_file_is_refused():
    with pytest.raises(PayloadError) as caught:
        decode_image(b"\xff\xd8\xff" + b"\0" * 10_000_001)
    assert caught.value.reason == "image-too-large"


def test_payload_too_long_for_a_code_at_m_is_refused_by_name(tmp_path):
    with pytest.raises(PayloadError) as caught:
        qr_png("EL1:" + "A" * 3400, tmp_path / "too-long.png")  # M holds 3,391
    assert caught.value.reason == "too-long"
    assert not (tmp_path / "too-long.png").exists()
