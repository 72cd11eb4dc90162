"""Asking a verifier service instead of the chain (`elicence verify --verifier URL`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from verifier.errors import CouldNotCheck, VerifierError

TIMEOUT_S = 30


class VerifierRefused(VerifierError, ValueError):
    """The service answered 4xx: the input (or the key) is not acceptable to it."""


def verify_remotely(base_url: str, data: bytes, api_key: str | None = None) -> dict[str, Any]:
    """The service's verdict (JSON) on a document, an EL1: payload or a QR image."""
    base = base_url.rstrip("/")
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        body, content_type = _multipart("image", data)
        url = f"{base}/v1/verifications/image"
    else:
        text = data.decode("utf-8-sig", errors="replace").strip()
        payload = {"qr": text} if not text.startswith(("{", "[")) else {"document": _json(text)}
        body, content_type = json.dumps(payload, ensure_ascii=False).encode(), "application/json"
        url = f"{base}/v1/verifications"
    request = urllib.request.Request(url, body, {**headers, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        problem = _problem(exc)
        if exc.code == 503:
            raise CouldNotCheck(f"the verifier could not check: {problem}") from exc
        if 400 <= exc.code < 500:
            raise VerifierRefused(
                f"the verifier refused the input ({exc.code}): {problem}"
            ) from exc
        raise CouldNotCheck(f"the verifier failed ({exc.code}): {problem}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise CouldNotCheck(f"no verifier answers at {base}: {exc}") from exc


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise VerifierRefused(f"not JSON: {exc}") from exc


def _problem(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
    except ValueError:
        return exc.reason or "no details"
    return str(body.get("detail") or body.get("title") or body)


def _multipart(field: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="qr"\r\n'
        f"Content-Type: {kind}\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )
