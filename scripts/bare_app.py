"""The yardstick for one verify replica: a bare FastAPI app doing the least a verifier must.

It takes the same body as POST /v1/verifications with a full licence document
(`{"document": {...}, "purpose": ...}`), validates it with a pydantic model, hashes
about as much as a verification does (a salt and a commitment per field, then the leaf
and the proof: ~30 SHA-256) and answers a small JSON verdict. No index, no key, no
audit, no rate limit: what the service adds on top is what scripts/bench_replica
measures. Run by uvicorn: `uvicorn scripts.bare_app:app --workers N`.
"""

from __future__ import annotations

import hashlib

from fastapi import FastAPI
from pydantic import BaseModel


class Anchor(BaseModel):
    chainId: int
    registry: str
    root: str
    proof: list[str]


class Document(BaseModel):
    format: str
    hashSuite: str
    type: str
    fields: dict[str, str]
    secret: str
    anchor: Anchor


class VerifyRequest(BaseModel):
    document: Document
    purpose: str | None = None


class Verdict(BaseModel):
    status: str
    licenceId: str


app = FastAPI()


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/v1/verifications")
async def verify(request: VerifyRequest) -> Verdict:
    document = request.document
    secret = bytes.fromhex(document.secret.removeprefix("0x"))
    commitments = []
    for name, value in document.fields.items():
        salt = hashlib.sha256(secret + name.encode()).digest()[:16]
        commitments.append(hashlib.sha256(salt + value.encode()).digest()[:16])
    node = hashlib.sha256(b"".join(commitments)).digest()[:16]
    licence_id = node
    for sibling in document.anchor.proof:
        node = hashlib.sha256(node + bytes.fromhex(sibling.removeprefix("0x"))).digest()[:16]
    status = "VALID" if node.hex() == document.anchor.root.removeprefix("0x") else "TAMPERED"
    return Verdict(status=status, licenceId="0x" + licence_id.hex())
