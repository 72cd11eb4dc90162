"""Index snapshots: a new replica starts from another's index instead of from block 0.

A snapshot is one file:

    elicence-index-snapshot/1\\n
    {"chainId": ..., "registry": ..., "height": ..., "blockHash": ..., "schema": ...,
     "payloadBytes": ..., "payloadSha256": ...}\\n
    the index at `height`, a SQLite database (SQLite's own ``VACUUM INTO`` copy)

Importing checks, before anything is written where the index goes: the header's chain
id and registry against the ones the replica trusts; the hash of block `height` on the
replica's chain against `blockHash` (a snapshot of another chain, or of a branch the
chain has since left, is refused); the payload's length and SHA-256 (a damaged or
truncated file is refused); and the database's own records against the header. The
index then syncs from `height + 1` on, as any index does.

A snapshot says what the registry's events were; nothing in it can be checked against
the chain short of syncing from nothing. So it is trusted as its source is: take it from
your own replicas, and compare its SHA-256 (printed by export, checked by import's
``expected_sha256``) through a channel you trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from web3.exceptions import BlockNotFound

from ledger.chain import translate_errors
from ledger.errors import SnapshotRefused
from ledger.index import SCHEMA_VERSION
from ledger.private import private_database
from ledger.registry import Registry

__all__ = ["MAGIC", "SnapshotHeader", "export_snapshot", "import_snapshot", "read_header"]

MAGIC = b"elicence-index-snapshot/1\n"
_MAX_HEADER_BYTES = 64 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SnapshotHeader:
    """What a snapshot says it holds; `sha256` is the whole file's digest."""

    chain_id: int
    registry: str
    height: int
    block_hash: str
    schema: int
    payload_bytes: int
    payload_sha256: str
    sha256: str = ""

    def to_json(self) -> bytes:
        """The header line (without the file digest, which covers it)."""
        return json.dumps(
            {
                "chainId": self.chain_id,
                "registry": self.registry,
                "height": self.height,
                "blockHash": self.block_hash,
                "schema": self.schema,
                "payloadBytes": self.payload_bytes,
                "payloadSha256": self.payload_sha256,
            },
            separators=(",", ":"),
        ).encode()


def export_snapshot(index_path: Path, destination: Path) -> SnapshotHeader:
    """Write a snapshot of the index file at `index_path` to `destination`.

    The copy is consistent even while a service syncs the same file (one read
    transaction); the destination appears whole or not at all.

    Raises:
        SnapshotRefused: there is no index there, or it has not synced a block yet.
    """
    if not index_path.is_file():
        raise SnapshotRefused(f"there is no index at {index_path}")
    copy = destination.with_name(f".{destination.name}.db-partial")
    partial = destination.with_name(f".{destination.name}.partial")
    for leftover in (copy, partial):
        leftover.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(index_path)
        try:
            source.execute("VACUUM INTO ?", (str(copy),))
        except sqlite3.DatabaseError as exc:
            raise SnapshotRefused(f"{index_path} cannot be read as an index: {exc}") from exc
        finally:
            source.close()
        facts = _facts(copy)
        if facts["hash"] is None:
            raise SnapshotRefused(
                f"the index at {index_path} has not synced any block yet: nothing to export"
            )
        digest = hashlib.sha256()
        size = 0
        with copy.open("rb") as payload:
            while chunk := payload.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        header = SnapshotHeader(
            chain_id=int(str(facts["chain_id"])),
            registry=str(facts["registry"]),
            height=int(str(facts["synced_block"])),
            block_hash=str(facts["hash"]),
            schema=int(str(facts["schema"])),
            payload_bytes=size,
            payload_sha256=digest.hexdigest(),
        )
        whole = hashlib.sha256()
        with partial.open("wb") as out, copy.open("rb") as payload:
            for part in (MAGIC, header.to_json() + b"\n"):
                out.write(part)
                whole.update(part)
            while chunk := payload.read(_CHUNK):
                out.write(chunk)
                whole.update(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, destination)
        return SnapshotHeader(**{**header.__dict__, "sha256": whole.hexdigest()})
    finally:
        copy.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def read_header(stream: BinaryIO) -> tuple[SnapshotHeader, bytes]:
    """The header at the start of `stream`, and its bytes (for the file digest).

    Raises:
        SnapshotRefused: the stream does not start with a snapshot header.
    """
    magic = stream.read(len(MAGIC))
    if magic != MAGIC:
        raise SnapshotRefused("not an elicence index snapshot (or of another version)")
    line = stream.readline(_MAX_HEADER_BYTES)
    if not line.endswith(b"\n"):
        raise SnapshotRefused("the snapshot's header is damaged or truncated")
    try:
        raw: Any = json.loads(line)
        header = SnapshotHeader(
            chain_id=_integer(raw["chainId"]),
            registry=str(raw["registry"]),
            height=_integer(raw["height"]),
            block_hash=str(raw["blockHash"]),
            schema=_integer(raw["schema"]),
            payload_bytes=_integer(raw["payloadBytes"]),
            payload_sha256=str(raw["payloadSha256"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotRefused(f"the snapshot's header is damaged: {exc}") from exc
    return header, magic + line


def import_snapshot(
    source: Path,
    destination: Path,
    registry: Registry,
    *,
    replace: bool = False,
    expected_sha256: str | None = None,
) -> SnapshotHeader:
    """Install the snapshot `source` as the index file `destination` for `registry`.

    Raises:
        SnapshotRefused: the file is damaged or truncated, of another registry or chain,
            of a block the chain does not have at its height, of another index schema,
            its SHA-256 is not `expected_sha256`, or an index exists at `destination`
            and `replace` is False.
        ChainUnreachable: the chain could not be asked for the block's hash.
    """
    if destination.exists() and not replace:
        raise SnapshotRefused(
            f"an index exists at {destination}: stop the service and replace it explicitly"
        )
    try:
        stream = source.open("rb")
    except OSError as exc:
        raise SnapshotRefused(f"cannot read {source}: {exc.strerror}") from exc
    with stream:
        header, head_bytes = read_header(stream)
        _check_against_chain(header, registry)
        partial = destination.with_name(f".{destination.name}.import-partial")
        private_database(partial)
        try:
            whole = _copy_payload(stream, partial, header, head_bytes)
            if expected_sha256 is not None and whole != expected_sha256.lower().strip():
                raise SnapshotRefused(
                    f"the snapshot's SHA-256 is {whole}, not the expected {expected_sha256}"
                )
            _check_database(partial, header)
            for suffix in ("-wal", "-shm"):
                Path(f"{destination}{suffix}").unlink(missing_ok=True)
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
    return SnapshotHeader(**{**header.__dict__, "sha256": whole})


def _check_against_chain(header: SnapshotHeader, registry: Registry) -> None:
    chain = registry.chain
    if header.chain_id != chain.chain_id or header.registry.lower() != registry.address.lower():
        raise SnapshotRefused(
            f"the snapshot is of registry {header.registry} on chain {header.chain_id}, "
            f"not of {registry.address} on chain {chain.chain_id}"
        )
    if header.schema != SCHEMA_VERSION:
        raise SnapshotRefused(
            f"the snapshot holds an index of schema {header.schema}; this elicence keeps "
            f"schema {SCHEMA_VERSION}: export it again with this version"
        )
    try:
        with translate_errors():
            found = chain.w3.eth.get_block(header.height)["hash"].to_0x_hex()
    except BlockNotFound:
        found = None
    if found != header.block_hash:
        raise SnapshotRefused(
            f"block {header.height} on the chain is {found or 'missing'}, the snapshot's is "
            f"{header.block_hash}: it was taken on another chain or on a branch the chain "
            "has left"
        )


def _copy_payload(stream: BinaryIO, partial: Path, header: SnapshotHeader, head: bytes) -> str:
    """Copy the payload to `partial`, checking its length and digest; the whole file's
    digest."""
    digest, whole = hashlib.sha256(), hashlib.sha256(head)
    size = 0
    with partial.open("wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > header.payload_bytes:
                raise SnapshotRefused("the snapshot has bytes past its payload: it is damaged")
            digest.update(chunk)
            whole.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if size != header.payload_bytes:
        raise SnapshotRefused(
            f"the snapshot is truncated: {size:,} of {header.payload_bytes:,} payload bytes"
        )
    if digest.hexdigest() != header.payload_sha256:
        raise SnapshotRefused("the snapshot's payload does not match its SHA-256: it is damaged")
    return whole.hexdigest()


def _check_database(path: Path, header: SnapshotHeader) -> None:
    """The database's own records say what the header says."""
    try:
        facts = _facts(path)
    except sqlite3.DatabaseError as exc:
        raise SnapshotRefused(f"the snapshot's index cannot be read: {exc}") from exc
    expected = {
        "chain_id": str(header.chain_id),
        "registry": header.registry,
        "synced_block": str(header.height),
        "schema": str(header.schema),
        "hash": header.block_hash,
    }
    for key, value in expected.items():
        if facts.get(key) != value:
            raise SnapshotRefused(
                f"the snapshot's index records {key} {facts.get(key)}, its header {value}"
            )


def _facts(path: Path) -> dict[str, str | None]:
    """An index file's identity, height and the hash of that block."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        facts: dict[str, str | None] = {
            str(key): str(value) for key, value in db.execute("SELECT key, value FROM meta")
        }
        height = facts.get("synced_block")
        row = db.execute(
            "SELECT hash FROM block_hashes WHERE number = ?", (int(height or -1),)
        ).fetchone()
        facts["hash"] = None if row is None else str(row[0])
        return facts
    finally:
        db.close()


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a whole number")
    return value
