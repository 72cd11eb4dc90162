"""POST /v1/verifications, /v1/verifications/batch and /v1/verifications/image."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from licence.document import LicenceDocument
from licence.errors import PayloadError
from verifier.images import decode_image
from verifier.service import memory
from verifier.service.deps import BEARER, CallerDep, ServicesDep
from verifier.service.errors import (
    FieldError,
    InvalidRequest,
    RateLimited,
    UnsupportedMediaType,
    UnusableLicence,
)
from verifier.service.hotpath import SingleVerification
from verifier.service.models import (
    PURPOSE_MAX,
    BatchVerdictOut,
    BatchVerificationRequest,
    Channel,
    VerdictOut,
    check_purpose,
)
from verifier.service.requests import (
    Deployment,
    live_deployment,
    load_licence,
    media_type,
    read_json,
    read_payload,
    validate,
)
from verifier.service.routers.common import answers, json_body, json_response
from verifier.service.settings import MAX_BATCH_BYTES, MAX_BATCH_ITEMS, MAX_JSON_BYTES
from verifier.service.verification import Item

router = APIRouter(prefix="/v1/verifications", tags=["verifications"])


@router.post(
    "",
    summary="Verify one licence",
    response_model=None,
    dependencies=[BEARER],
    responses=answers(VerdictOut, "The verdict.", 400, 401, 403, 413, 415, 422, 429, 503),
    openapi_extra=json_body(
        "VerificationRequest",
        f"The licence as `qr` (an EL1: payload) or `document` (JSON); at most "
        f"{MAX_JSON_BYTES} bytes.",
    ),
)
async def verify_licence(request: Request, services: ServicesDep) -> Response:
    """Check a licence or presentation against the trusted registry.

    The answer (200) is a verdict whatever the licence: `status` is VALID only when
    every check passed (integrity, anchor, issuer, status, validity); otherwise it names
    the first failed check's outcome (TAMPERED, NOT_ANCHORED, ISSUER_NOT_AUTHORISED,
    REVOKED, CANCELLED, SUPERSEDED, SUSPENDED, EXPIRED, NOT_YET_VALID), and each check
    gives its reason in words. The answer reflects the chain as of `blockHeight`, which
    includes every transaction confirmed before the request arrived.

    Fields the caller's API key may not see are listed in `withheld`, not shown; the
    verdict is the same. When the chain cannot be read the answer is 503
    (`could-not-check`), never a verdict.
    """
    # Requests are answered by verifier.service.hotpath.VerifyFront before they reach
    # FastAPI; this route declares the operation and runs the same code if they do.
    answer = await SingleVerification(services).answer(request.scope, request.receive)
    return Response(
        answer.body, answer.status, headers=answer.headers, media_type=answer.media_type
    )


@router.post(
    "/batch",
    summary="Verify the licences of one matter (一件事一次办)",
    response_model=None,
    responses=answers(
        BatchVerdictOut,
        "Per-item verdicts and the overall answer.",
        400,
        401,
        413,
        415,
        422,
        429,
        503,
    ),
    openapi_extra=json_body(
        "BatchVerificationRequest",
        f"1 to {MAX_BATCH_ITEMS} licences; at most {MAX_BATCH_BYTES} bytes.",
    ),
)
async def verify_batch(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    """Check several licences for one matter in one call.

    Each item gets its own verdict, or a `problem` when it cannot be read or the API key
    may not verify its type. `satisfied` is true only when every item is VALID, every
    licence type in `requiredTypes` is among the VALID items, and (unless `sameHolder`
    is false) every licence names the same unified social credit code; otherwise
    `reasons` says why: `invalid-item`, `missing-type`, `holder-mismatch`,
    `holder-unknown` (a licence that does not disclose its holder's code).
    """
    body = validate(BatchVerificationRequest, await read_json(request))
    items: list[Item] = []
    deployment = live_deployment(services.live)  # what an EL2: payload is read with
    for index, entry in enumerate(body.items):
        try:
            read = partial(load_licence, entry, deployment)
            document = await services.verification.read_licence(read)
            items.append(Item(document))
        except UnusableLicence as exc:
            path = f"items.{index}.{exc.path}" if exc.path else f"items.{index}"
            items.append(Item(None, UnusableLicence(str(exc), reason=exc.reason, path=path)))
    answer = await services.verification.verify_batch(
        items, caller, body.purpose, body.required_types, body.same_holder
    )
    return json_response(answer)


_IMAGE_FORM = {
    "requestBody": {
        "required": True,
        "description": "A photo or scan of the licence's QR code: PNG (at most 10 "
        "megapixels) or JPEG (at most 40 megapixels, read at up to 10), at most 10 MB.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "maxLength": PURPOSE_MAX},
                    },
                }
            }
        },
    }
}


@router.post(
    "/image",
    summary="Verify the licence in a QR code image",
    response_model=None,
    responses=answers(VerdictOut, "The verdict.", 400, 401, 403, 413, 415, 422, 429, 503),
    openapi_extra=_IMAGE_FORM,
)
async def verify_image(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    """Read the QR code in a PNG or JPEG image (e.g. a phone photo) and verify its licence.

    The answer is the same as for a single verification. An image without a readable
    QR code is a 422 problem with the reason `no-qr`.
    """
    if media_type(request) != "multipart/form-data":
        raise UnsupportedMediaType("send the image as multipart/form-data (field 'image')")
    _require_utf8_form(request.headers.get("content-type", ""))
    async with request.form(max_files=1, max_fields=2) as form:
        image = form.get("image")
        purpose = form.get("purpose")
        if not isinstance(image, UploadFile):
            raise InvalidRequest(
                "the form has no image", [FieldError("image", "a PNG or JPEG file is required")]
            )
        if purpose is not None:
            try:
                if not isinstance(purpose, str):
                    raise ValueError(f"at most {PURPOSE_MAX} characters of text, not a file")
                check_purpose(purpose)
            except ValueError as exc:
                raise InvalidRequest(
                    "purpose is not plain text", [FieldError("purpose", str(exc))]
                ) from None
        data = await image.read()
    # Decoding a photo takes milliseconds of native code: off the event loop.
    text = await run_in_threadpool(_payload_in_image, data)
    deployment = live_deployment(services.live)
    document = await services.verification.read_licence(lambda: _payload_document(text, deployment))
    answer = await services.verification.verify_one(document, caller, purpose, Channel.IMAGE)
    return json_response(answer)


def _require_utf8_form(content_type: str) -> None:
    """UnsupportedMediaType unless the form's text fields are UTF-8.

    Starlette decodes the fields in the charset the Content-Type names, whatever it is:
    in UTF-7, `+2AA-` is a lone surrogate, text that no UTF-8 store can hold.
    """
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in {"utf-8", "utf8", "us-ascii", "ascii"}:
                raise UnsupportedMediaType(
                    f"form fields must be UTF-8 text; charset={charset} is refused"
                )


class DecodeGate:
    """At most `slots` images decoded at once and `queue` more waiting; more than that is
    refused at once (429, retry in a second) rather than queued without end.

    A decode holds up to ~10 megapixels of grey plus the QR reader's copies (tens of MB),
    so the bound on memory is the bound on decodes in flight, whatever the traffic.
    """

    def __init__(self, slots: int, queue: int) -> None:
        self._slots = threading.Semaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + queue)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a decoding slot (waiting behind at most `queue` others), or RateLimited."""
        if not self._admitted.acquire(blocking=False):
            raise RateLimited(
                "the service is reading as many images as it can at once; retry shortly", 1
            )
        try:
            with self._slots:
                yield
        finally:
            self._admitted.release()


DECODES = DecodeGate(slots=2, queue=6)


def _payload_in_image(data: bytes) -> str:
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        raise UnusableLicence("the image is neither PNG nor JPEG", reason="image")
    with DECODES.slot():
        try:
            text = decode_image(data)
        except PayloadError as exc:
            raise UnusableLicence(str(exc), reason=exc.reason) from None
        finally:
            # The decoders' blocks were freed into a malloc arena: give them back to
            # the system, so that a burst of photos does not stay resident.
            memory.release_freed()
    return text


def _payload_document(text: str, deployment: Deployment) -> LicenceDocument:
    # UnknownTypeVersion passes: the service loads the version and reads it again.
    try:
        return read_payload(text, deployment)
    except PayloadError as exc:
        raise UnusableLicence(str(exc), reason=exc.reason) from None
