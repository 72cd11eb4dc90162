"""Trust snapshots: what a verifier needs to know of the registry, signed by its
governor, to verify with no chain (a counter terminal offline, an inspector on a site).

Not the index snapshot of `ledger.snapshot`, which copies a replica's whole SQLite index
and is trusted as its source is: a trust snapshot holds only the state verification
reads, and carries its own proof of origin, so one taken from a USB stick or a mirror
can be trusted.

The file is gzip-compressed JSON (UTF-8):

    {"format": "elicence-trust-snapshot/2",
     "body": {
       "chainId": 31337, "registry": "0x…", "governor": "0x…",
       "blockNumber": N, "blockHash": "0x…", "blockTime": <unix seconds>,
       "licenceTypes": [{"code", "version", "definitionHash" (64 hex, no 0x),
                         "definition" (the published RFC 8785 JSON, as text),
                         "blockNumber"}],
       "agencies": [{"id", "code", "name", "licenceTypes": [codes], "retired",
                     "registeredAtBlock", "retiredAtBlock" (or null),
                     "keys": [{"number", "address", "fromBlock", "untilBlock" (or null),
                               "compromisedFromBlock" (or null)}],
                     "sealKeys": [{"number", "publicKey" (128 hex, no 0x), "validFrom",
                                   "compromisedFromBlock" (or null)}]}],
       "anchorColumns": ["root", "agencyId", "licenceType", "count", "block", "time",
                         "keyNumber", "typeVersion"],
       "anchors": [[<32 hex>, …], …],
       "statusColumns": ["agencyId", "leaf", "status", "reason", "block", "successor"],
       "statuses": [[1, <32 hex>, 2, 1, 812, <32 hex> or null], …],
       "batchRevocationColumns": ["root", "reason", "block"],
       "batchRevocations": [[<32 hex>, 3, 900], …]},
     "signatures": {
       "governor": {"address": "0x…", "signature": "0x<65 bytes>"},
       "sm2": {"publicKey": "<128 hex>", "signature": "<128 hex, r || s>"} or null}}

`licenceTypes` holds every licence type version published in the registry (its
LicenceTypePublished events, as the index keeps them) with the definition itself, so a
verifier with no chain reads types by the definitions the governor published, not by a
copy of its own. An agency's "licenceTypes" are the types it is authorised for.

`statuses` lists every licence whose status (per anchoring agency, as the registry keeps
it) is not active. The governor's chain key (secp256k1) signs, as an EIP-191 personal
message (what eth-account's `sign_message` and any wallet sign), the text

    elicence trust snapshot
    chain <chainId>
    registry <registry>
    block <blockNumber>
    sha256 <SHA-256 of the body's canonical JSON, 64 hex>

where the canonical JSON is orjson's compact form with sorted keys. Loading recovers
the signer from the signature and refuses the snapshot unless that address is the one
the file names and one the verifier trusts as the registry's governor (its own pinned
trust anchor, as the registry address is: a snapshot cannot vouch for its signer).

"sm2" is the governor's SM2 co-signature (GB/T 32918.2 with SM3 and the default
distinguishing identifier, `licence.seal.sign`) of the same UTF-8 text, by the governor's
SM2 key (`elicence registry seal-key new`). A verifier that pins the governor's SM2
public key (`pinned_seal_key`) refuses a snapshot whose "sm2" is null, names another key
or does not verify: a stolen chain key alone cannot sign a snapshot it accepts. A
verifier that pins none does not read "sm2" (snapshots from before SM2 keys load).

Loaded, the snapshot keeps its header (`TrustSnapshot.body`, without the anchors,
statuses and batch revocations) and its look-ups; the changed statuses, the bulk of a
large registry, are held as one sorted bytes blob of 20-byte keys (agency id, leaf) and
an array of indexes into the few distinct states (`_Statuses`), not as a dict of Python
objects (docs/offline.md, "Size and time", has the figures).

Loading checks each definition against its "definitionHash" (SHA-256 of its UTF-8
bytes): one that does not match refuses the whole snapshot (code "definition"), for
the signature only proves that the governor signed it, not that the exporter read the
index right. A definition that matches but cannot be read as a licence type by this
verifier, or whose canonical form hashes otherwise, is kept out of `licence_types()`:
documents of that version then cannot be checked ("type.unavailable"), never judged by
another definition.

SnapshotRefused (VerifierError, ValueError): the file is not a trust snapshot, its
signature or content was altered, it was signed by a key the verifier does not trust as
governor, it lacks the SM2 co-signature the verifier asks for, a definition in it does
not hash to its stated hash, or it is of another registry or chain. Its `code` says
which, with the offline page's codes (verifier/web/static/js/offline.js): "format",
"signature", "unsigned", "definition", "other-registry".
"""

from __future__ import annotations

import array
import datetime as dt
import gzip
import hashlib
import json
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final

import orjson
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address

from ledger.private import PRIVATE_FILE
from ledger.registry import Agency, Anchor, LeafState, SealKey
from licence import seal
from licence.catalogue import LicenceType
from licence.errors import DefinitionError
from licence.statuses import FINAL, LeafStatus
from verifier.errors import VerifierError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledger.registry import PublishedType, Registry

FORMAT = "elicence-trust-snapshot/2"
# Format 1 had the registry's 63-type bitmask and no definitions: a registry of that
# time cannot be read by this elicence either (docs/registry.md).
_FORMAT_1 = "elicence-trust-snapshot/1"
ANCHOR_COLUMNS = [
    "root",
    "agencyId",
    "licenceType",
    "count",
    "block",
    "time",
    "keyNumber",
    "typeVersion",
]
TYPE_MEMBERS: Final = ("code", "version", "definitionHash", "definition", "blockNumber")
STATUS_COLUMNS = ["agencyId", "leaf", "status", "reason", "block", "successor"]
BATCH_COLUMNS = ["root", "reason", "block"]
# The body's members held as look-ups once loaded, not kept in TrustSnapshot.body.
TABLES: Final = ("anchors", "statuses", "batchRevocations", "licenceTypes")
DEFAULT_MAX_AGE = dt.timedelta(days=7)
SEAL_KEY_VARIABLE = "ELICENCE_GOVERNOR_SEAL_KEY"
SEAL_KEY_MEMBER = "governorSealKey"  # of HOME/config.json
_ACTIVE = LeafState(LeafStatus.ACTIVE, 0, 0, None)
_LEAF_BYTES = 16
_KEY_BYTES = 4 + _LEAF_BYTES  # agency id (big-endian) || leaf: sorts as (agency, leaf)
_DIGEST_ROWS = 65536  # rows of a large list serialised at a time for the digest


class SnapshotRefused(VerifierError, ValueError):
    """The trust snapshot cannot be trusted or read; the message says why, `code` which
    kind of refusal ("format", "signature", "unsigned", "other-registry")."""

    def __init__(self, message: str, code: str = "format") -> None:
        super().__init__(message)
        self.code = code


class _ContentMismatch(SnapshotRefused):
    """A signature that does not match the content as it was read (so it may have been
    read wrongly: load_snapshot reads it again the plain way before refusing it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "signature")


# -- the governor's SM2 key, as verifiers pin it -----------------------------------------


def parse_seal_key(text: str, source: str) -> bytes:
    """A 64-byte SM2 public key from its 128 hex digits (0x optional); SnapshotRefused
    naming `source` (a flag, a variable, a file) when it is not one."""
    try:
        key = bytes.fromhex(text.strip().removeprefix("0x"))
        seal.check_public_key(key)
    except ValueError as exc:
        raise SnapshotRefused(f"{source}: not an SM2 public key (128 hex digits): {exc}") from None
    except seal.SealError as exc:
        raise SnapshotRefused(f"{source}: {exc}") from None
    return key


def pinned_seal_key(home: Path | None, given: str | None = None) -> bytes | None:
    """The governor's SM2 public key a verifier pins: `given` (a flag or setting), else
    ELICENCE_GOVERNOR_SEAL_KEY, else "governorSealKey" in HOME/config.json; None when
    none is set (then the "sm2" co-signature is not read).

    Raises:
        SnapshotRefused: the key set is not an SM2 public key.
    """
    if given:
        return parse_seal_key(given, "--governor-seal-key")
    named = os.environ.get(SEAL_KEY_VARIABLE, "").strip()
    if named:
        return parse_seal_key(named, SEAL_KEY_VARIABLE)
    if home is None:
        return None
    config = home / "config.json"
    try:
        saved = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    member = saved.get(SEAL_KEY_MEMBER) if isinstance(saved, dict) else None
    if not member:
        return None
    if not isinstance(member, str):
        raise SnapshotRefused(f'{config}: "{SEAL_KEY_MEMBER}" must be 128 hex digits')
    return parse_seal_key(member, f'{config} "{SEAL_KEY_MEMBER}"')


# -- exporting ---------------------------------------------------------------------------


def read_index(index_path: Path) -> dict[str, Any]:
    """The unsigned body of a snapshot, from a verifier's index file (ledger.index),
    read in one SQLite transaction so that every table is of the same height. The block
    time is left for `export_snapshot`, which asks the chain.

    Raises:
        SnapshotRefused: the file is not an index of the schema this module reads.
    """
    from ledger.index import SCHEMA_VERSION

    if not index_path.exists():
        raise SnapshotRefused(f"no index at {index_path}: sync one first (`elicence serve`)")
    db = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)
    try:
        db.execute("BEGIN")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if int(meta.get("schema") or 0) != SCHEMA_VERSION:
            raise SnapshotRefused(
                f"{index_path} has index schema {meta.get('schema')}, not {SCHEMA_VERSION}: "
                "sync it with this elicence first"
            )
        height = int(meta["synced_block"])
        row = db.execute("SELECT hash FROM block_hashes WHERE number = ?", (height,)).fetchone()
        body: dict[str, Any] = {
            "chainId": int(meta["chain_id"]),
            "registry": meta["registry"],
            "blockNumber": height,
            "blockHash": None if row is None else str(row[0]),
            "licenceTypes": _licence_types(db, index_path),
            "agencies": _agencies(db),
            "anchorColumns": ANCHOR_COLUMNS,
            "anchors": [
                [root.hex(), *rest]
                for root, *rest in db.execute(
                    "SELECT root, agency_id, licence_type, count, block_number, timestamp, "
                    "key_number, type_version FROM anchors ORDER BY block_number, root"
                )
            ],
            "statusColumns": STATUS_COLUMNS,
            "statuses": [
                [agency_id, leaf.hex(), status, reason, block, successor and successor.hex()]
                for agency_id, leaf, status, reason, block, successor in db.execute(
                    "SELECT agency_id, leaf, status, reason, block_number, successor FROM leaves "
                    "WHERE status != ? ORDER BY agency_id, leaf",
                    (int(LeafStatus.ACTIVE),),
                )
            ],
            "batchRevocationColumns": BATCH_COLUMNS,
            "batchRevocations": [
                [root.hex(), reason, block]
                for root, reason, block in db.execute(
                    "SELECT root, reason, block_number FROM batch_revocations ORDER BY root"
                )
            ],
        }
        db.execute("COMMIT")
    except (sqlite3.Error, KeyError, ValueError) as exc:
        if isinstance(exc, SnapshotRefused):
            raise
        raise SnapshotRefused(f"{index_path} is not a usable index: {exc}") from None
    finally:
        db.close()
    return body


def _licence_types(db: sqlite3.Connection, index_path: Path) -> list[dict[str, Any]]:
    """Every published licence type version with its definition, from the index's
    licence_types table, each definition checked against the hash the registry recorded.

    Raises:
        SnapshotRefused: a definition in the index does not hash to its recorded hash.
    """
    published = []
    for code, version, hashed, stored, block in db.execute(
        "SELECT code, version, definition_hash, definition, block_number FROM licence_types "
        "ORDER BY code, version"
    ):
        definition, recorded = bytes(stored), bytes(hashed)
        if hashlib.sha256(definition).digest() != recorded:
            raise SnapshotRefused(
                f"{index_path}: its definition of licence type {code} version {version} "
                f"hashes to {hashlib.sha256(definition).hexdigest()}, not to the registry's "
                f"{recorded.hex()}: sync a new index"
            )
        try:
            text = definition.decode("utf-8")
        except UnicodeDecodeError:
            # Published, but no definition anyone can read: left out, so its documents
            # are "could not check" offline as they are online.
            continue
        published.append(
            {
                "code": code,
                "version": version,
                "definitionHash": recorded.hex(),
                "definition": text,
                "blockNumber": block,
            }
        )
    return published


def _agencies(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Each agency with the history of its keys, from the state tables and the journal
    (the state keeps only the current key; validity and retirement need the events)."""
    authorised = _authorised_types(db)
    agencies: dict[int, dict[str, Any]] = {}
    for id_, signer, retired, code, name in db.execute(
        "SELECT id, signer, retired, code, name FROM agencies ORDER BY id"
    ):
        agencies[id_] = {
            "id": id_,
            "code": code,
            "name": name,
            "licenceTypes": authorised.get(id_, []),
            "retired": bool(retired),
            "registeredAtBlock": None,
            "retiredAtBlock": None,
            "keys": [],
            "sealKeys": [],
        }
        agencies[id_]["_signer"] = to_checksum_address(signer)
    compromised = {
        (agency_id, number): block
        for agency_id, number, block in db.execute("SELECT * FROM compromises")
    }
    for block, name, raw in db.execute(
        "SELECT block_number, name, args FROM events WHERE name IN "
        "('AgencyRegistered', 'SignerRotated', 'AgencyRetired') ORDER BY block_number, log_index"
    ):
        args = json.loads(raw)
        agency = agencies.get(args["agencyId"])
        if agency is None:
            continue
        keys: list[dict[str, Any]] = agency["keys"]
        if name == "AgencyRegistered":
            agency["registeredAtBlock"] = block
            keys.append(_key(1, args["signer"], block))
        elif name == "SignerRotated":
            if keys:
                keys[-1]["untilBlock"] = block
            keys.append(_key(len(keys) + 1, args["newSigner"], block))
        else:
            agency["retiredAtBlock"] = block
    for agency in agencies.values():
        signer = agency.pop("_signer")
        if not agency["keys"]:  # an index started past the agency's registration
            agency["keys"].append(_key(1, signer, None))
        for key in agency["keys"]:
            key["compromisedFromBlock"] = compromised.get((agency["id"], key["number"]))
    for agency_id, seal_key in _seal_keys(db):
        if agency_id in agencies:
            agencies[agency_id]["sealKeys"].append(seal_key)
    return list(agencies.values())


def _authorised_types(db: sqlite3.Connection) -> dict[int, list[int]]:
    """The codes each agency is authorised for, ascending: from an `agency_types` table
    (agency, code) when the index has one, else from the agencies' `licence_types`
    column (a JSON array of codes)."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    authorised: dict[int, list[int]] = {}
    if "agency_types" in tables:
        for agency_id, licence_type in db.execute(
            "SELECT agency_id, licence_type FROM agency_types ORDER BY agency_id, licence_type"
        ):
            authorised.setdefault(agency_id, []).append(licence_type)
        return authorised
    for agency_id, codes in db.execute("SELECT id, licence_types FROM agencies"):
        authorised[agency_id] = sorted(int(code) for code in json.loads(codes))
    return authorised


def _seal_keys(db: sqlite3.Connection) -> list[tuple[int, dict[str, Any]]]:
    """The agencies' SM2 seal keys from the index's seal_keys table; none from an index
    that has no such table (made before seal keys were indexed)."""
    known = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seal_keys'"
    ).fetchone()
    if known is None:
        return []
    return [
        (
            agency_id,
            {
                "number": number,
                "publicKey": bytes(public_key).hex(),
                "validFrom": valid_from,
                "compromisedFromBlock": compromised_from,
            },
        )
        for agency_id, number, public_key, valid_from, compromised_from in db.execute(
            "SELECT agency_id, number, public_key, valid_from, compromised_from FROM seal_keys "
            "ORDER BY agency_id, number"
        )
    ]


def _key(number: int, address: str, from_block: int | None) -> dict[str, Any]:
    return {
        "number": number,
        "address": to_checksum_address(address),
        "fromBlock": from_block,
        "untilBlock": None,
    }


def export_snapshot(
    index_path: Path,
    registry: Registry,
    governor: LocalAccount,
    destination: Path,
    *,
    seal_key: bytes | None = None,
) -> TrustSnapshot:
    """Sign the state of the index at `index_path` with the governor's chain key, and
    with its SM2 key `seal_key` (32-byte private key) when given, and write it (gzip
    JSON, atomically, mode 0600) to `destination`.

    The caller syncs the index first. The chain gives the snapshot block's time and
    confirms its hash (an index on a branch the chain has left is refused), and that
    `governor` holds the registry's GOVERNOR_ROLE.

    Raises:
        SnapshotRefused: the index is of another registry or chain, or on another branch,
            or `governor` is not a governor of the registry.
        ChainUnreachable: the chain did not answer.
        SealError: `seal_key` is not an SM2 key, or this OpenSSL has no SM2.
    """
    body = read_index(index_path)
    if (
        body["chainId"] != registry.chain.chain_id
        or body["registry"].lower() != registry.address.lower()
    ):
        raise SnapshotRefused(
            f"{index_path} indexes registry {body['registry']} on chain {body['chainId']}, "
            f"not {registry.address} on chain {registry.chain.chain_id}",
            "other-registry",
        )
    if not registry.is_governor(governor.address):
        raise SnapshotRefused(
            f"{governor.address} is not a governor of registry {registry.address}: only a "
            "governor's key may sign a trust snapshot",
            "signature",
        )
    block = registry.chain.w3.eth.get_block(body["blockNumber"])
    chain_hash = "0x" + bytes(block["hash"]).hex()
    if body["blockHash"] not in (None, chain_hash):
        raise SnapshotRefused(
            f"the index's block {body['blockNumber']} is {body['blockHash']}, the chain's is "
            f"{chain_hash}: sync the index (the chain was reorganised)"
        )
    body["blockHash"] = chain_hash
    body["blockTime"] = int(block["timestamp"])
    body["governor"] = governor.address
    digest = body_digest(body)
    document = {
        "format": FORMAT,
        "body": body,
        "signatures": sign_body(body, digest, governor, seal_key),
    }
    _write_atomically(destination, document)
    return _build(body, digest)


def sign_body(
    body: dict[str, Any], digest: str, governor: LocalAccount, seal_key: bytes | None
) -> dict[str, Any]:
    """The "signatures" member for `body` (whose digest is `digest`)."""
    text = _message(body, digest)
    signed = governor.sign_message(encode_defunct(text=text))
    sm2 = None
    if seal_key is not None:
        sm2 = {
            "publicKey": seal.public_key(seal_key).hex(),
            "signature": seal.sign(seal_key, text.encode("utf-8")).hex(),
        }
    return {
        "governor": {"address": governor.address, "signature": "0x" + signed.signature.hex()},
        "sm2": sm2,
    }


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    """The document gzipped into a private file that is never seen half-written (the
    verifier does not import issuing's issuer.files). Written a part at a time, so the
    whole JSON text is never in memory beside the body."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            with gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6, mtime=0) as packed:
                for part in _json_parts(document):
                    packed.write(part)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, PRIVATE_FILE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _json_parts(value: Any, *, sort_keys: bool = False) -> Iterable[bytes]:
    """orjson's compact JSON of `value` (keys sorted if asked), in parts: a large list a
    block of rows at a time. Joined, the parts are exactly `orjson.dumps(value)`."""
    option = orjson.OPT_SORT_KEYS if sort_keys else 0
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        yield b"{"
        # orjson sorts keys by their UTF-8 bytes: the order of their code points, Python's.
        for i, key in enumerate(sorted(value) if sort_keys else value):
            yield (b"," if i else b"") + orjson.dumps(key) + b":"
            yield from _json_parts(value[key], sort_keys=sort_keys)
        yield b"}"
    elif isinstance(value, list) and len(value) > _DIGEST_ROWS:
        yield b"["
        for start in range(0, len(value), _DIGEST_ROWS):
            part = orjson.dumps(value[start : start + _DIGEST_ROWS], option=option)
            yield (b"," if start else b"") + part[1:-1]
        yield b"]"
    else:
        yield orjson.dumps(value, option=option)


def body_digest(body: dict[str, Any]) -> str:
    """The SHA-256 (hex) of the body's canonical JSON (orjson, compact, keys sorted),
    computed a part at a time: the canonical text of a million statuses is 50 MB."""
    hashed = hashlib.sha256()
    for part in _json_parts(body, sort_keys=True):
        hashed.update(part)
    return hashed.hexdigest()


def _canonical(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _message(body: dict[str, Any], digest: str) -> str:
    return (
        "elicence trust snapshot\n"
        f"chain {body['chainId']}\n"
        f"registry {body['registry']}\n"
        f"block {body['blockNumber']}\n"
        f"sha256 {digest}"
    )


# -- loading and verifying against it ----------------------------------------------------


def load_snapshot(
    path: Path,
    *,
    governors: Iterable[str],
    registry: str | None = None,
    chain_id: int | None = None,
    governor_seal_key: bytes | None = None,
) -> TrustSnapshot:
    """The snapshot at `path`, once its signatures are checked.

    `governors` are the addresses the verifier trusts as the registry's governor;
    `registry` and `chain_id`, when given, the registry it trusts; `governor_seal_key`,
    when given, the governor's SM2 public key (64 bytes), whose co-signature the
    snapshot must then carry.

    Raises:
        SnapshotRefused: unreadable, altered, signed by an untrusted key, without the SM2
            co-signature asked for, or of another registry or chain.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise SnapshotRefused(f"no trust snapshot at {path}") from None
    except OSError as exc:
        raise SnapshotRefused(f"{path} cannot be read: {exc}") from None
    # The statuses read a part at a time as the exporter lays them out (_parse_streamed),
    # else the whole file at once: the signature decides in both cases, so a file the
    # first reads wrongly is read again by the second before it is refused.
    with handle:
        for parse in (_parse_streamed, _parse_whole):
            try:
                document, statuses, digest = parse(handle)
            except (
                orjson.JSONDecodeError,
                KeyError,
                TypeError,
                ValueError,
                OSError,  # gzip's BadGzipFile
                EOFError,  # a gzip file cut short
                zlib.error,
            ) as exc:
                if parse is _parse_whole:
                    raise SnapshotRefused(f"{path} is not a trust snapshot: {exc}") from None
                continue
            try:
                _check(
                    path,
                    document,
                    digest,
                    governors=governors,
                    registry=registry,
                    chain_id=chain_id,
                    governor_seal_key=governor_seal_key,
                )
            except _ContentMismatch:
                if parse is _parse_whole:
                    raise
                continue
            break
    body = document["body"]
    try:
        if statuses is None:
            statuses = _Statuses.of(body["statuses"])
        return _build(body, digest, statuses)
    except SnapshotRefused as exc:  # signed, yet a definition is not the one it names
        raise SnapshotRefused(f"{path}: {exc}", exc.code) from None
    except (KeyError, TypeError, ValueError) as exc:  # signed, yet not of this format
        raise SnapshotRefused(f"{path}: its content is not a snapshot's ({exc})") from None


_STATUSES_MEMBER = b'"statuses":['
_READ_BYTES = 1 << 20  # compressed bytes read at a time
_PART_BYTES = 1 << 20  # statuses text parsed at a time


def _parse_streamed(handle: BinaryIO) -> tuple[dict[str, Any], _Statuses, str]:
    """The document without its statuses, the statuses, the body's digest, in two reads
    of the file and never more than a few megabytes of its text at once: the first
    reads the document around the statuses (the body's member order and the digest's
    differ: the statuses are hashed after members that follow them in the file), the
    second parses and hashes the statuses a part at a time.

    Raises:
        ValueError (or orjson.JSONDecodeError, KeyError, TypeError, zlib.error): the
            file is not laid out as the exporter lays it out, or is not gzip.
    """
    rest = b"".join(text for rows, text in _scan(handle) if not rows)
    document = orjson.loads(rest)
    del rest
    if not isinstance(document, dict) or not isinstance(document.get("body"), dict):
        raise ValueError("no body")
    body = document["body"]
    if body.get("statuses") != []:
        raise ValueError("the statuses member is not the body's")
    names = sorted(body)
    where = names.index("statuses")
    hashed = hashlib.sha256(b"{")
    for i, name in enumerate(names[:where]):
        hashed.update((b"," if i else b"") + orjson.dumps(name) + b":")
        for part in _json_parts(body[name], sort_keys=True):
            hashed.update(part)
    hashed.update((b"," if where else b"") + b'"statuses":[')
    statuses = _Statuses()
    first = True
    for is_rows, text in _scan(handle):
        if is_rows:
            rows = orjson.loads(b"[" + text + b"]")
            hashed.update(
                (b"" if first else b",") + orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)[1:-1]
            )
            first = False
            statuses.add(rows)
    hashed.update(b"]")
    for name in names[where + 1 :]:
        hashed.update(b"," + orjson.dumps(name) + b":")
        for part in _json_parts(body[name], sort_keys=True):
            hashed.update(part)
    hashed.update(b"}")
    statuses.finish()
    return document, statuses, hashed.hexdigest()


def _scan(handle: BinaryIO) -> Iterator[tuple[bool, bytes]]:
    """The gzip file's text from its start, in parts: (True, whole rows of the statuses,
    as `[…],[…]`) or (False, the text around them, the array's brackets included).

    Raises:
        ValueError: no single statuses member, or it does not end.
        zlib.error: not gzip.
    """
    handle.seek(0)
    inflate = zlib.decompressobj(wbits=31)  # gzip framing
    buffer = bytearray()
    state = "before"
    searched = 0
    ended = False
    while not ended:
        block = handle.read(_READ_BYTES)
        if block:
            buffer += inflate.decompress(block)
        else:
            buffer += inflate.flush()
            if not inflate.eof or inflate.unused_data:
                raise ValueError("not one whole gzip member")
            ended = True
        while True:
            if state == "before":
                at = buffer.find(_STATUSES_MEMBER, searched)
                if at < 0:
                    keep = max(0, len(buffer) - len(_STATUSES_MEMBER) + 1)
                    yield False, bytes(buffer[:keep])
                    del buffer[:keep]
                    searched = 0
                    break
                cut = at + len(_STATUSES_MEMBER)
                yield False, bytes(buffer[:cut])
                del buffer[:cut]
                state, searched = "inside", 0
            elif state == "inside":
                if buffer[:1] == b"]":  # the array ends (or was empty)
                    state = "after"
                    continue
                end = buffer.find(b"]]", searched)
                if end >= 0:
                    yield True, bytes(buffer[: end + 1])
                    del buffer[: end + 1]
                    continue
                if len(buffer) >= _PART_BYTES and (cut := buffer.rfind(b"],[")) >= 0:
                    yield True, bytes(buffer[: cut + 1])
                    del buffer[: cut + 2]
                searched = max(0, len(buffer) - 1)
                break
            else:
                break
    if state != "after":
        raise ValueError("no statuses member, or it does not end")
    if _STATUSES_MEMBER in buffer:
        raise ValueError("more than one statuses member")
    yield False, bytes(buffer)


def _parse_whole(handle: BinaryIO) -> tuple[dict[str, Any], None, str]:
    """The document and the body's digest, parsed at once (any JSON layout)."""
    handle.seek(0)
    document = orjson.loads(gzip.decompress(handle.read()))
    if not isinstance(document, dict) or not isinstance(document.get("body"), dict):
        raise ValueError("no body")
    return document, None, body_digest(document["body"])


def _check(
    path: Path,
    document: dict[str, Any],
    digest: str,
    *,
    governors: Iterable[str],
    registry: str | None,
    chain_id: int | None,
    governor_seal_key: bytes | None,
) -> None:
    """Return if the document's signatures are good and its registry the trusted one."""
    if document.get("format") == _FORMAT_1:
        raise SnapshotRefused(
            f"{path} is a trust snapshot of format {_FORMAT_1}, from before licence types "
            f"were published in the registry: export a new one (format {FORMAT})"
        )
    if document.get("format") != FORMAT:
        raise SnapshotRefused(f"{path} is not a trust snapshot of format {FORMAT}")
    body = document["body"]
    try:
        signatures = document["signatures"]
        stated = to_checksum_address(signatures["governor"]["address"])
        signature = signatures["governor"]["signature"]
        text = _message(body, digest)
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except (KeyError, TypeError, ValueError, BadSignature) as exc:
        # BadSignature: the signature names no point of the curve (it was altered).
        raise SnapshotRefused(
            f"{path}: its signature cannot be read ({exc})", "signature"
        ) from None
    if signer != stated or body.get("governor") != stated:
        raise _ContentMismatch(
            f"{path}: the governor's signature does not match the snapshot's content "
            "(it was altered after signing, or signed by another key)"
        )
    trusted = {to_checksum_address(a) for a in governors}
    if signer not in trusted:
        raise SnapshotRefused(
            f"{path} is signed by {signer}, which is not a governor you trust "
            f"({', '.join(sorted(trusted)) or 'none configured'})",
            "signature",
        )
    if governor_seal_key is not None:
        _check_sm2(path, signatures.get("sm2"), text, governor_seal_key)
    if chain_id is not None and body.get("chainId") != chain_id:
        raise SnapshotRefused(
            f"{path} is of chain {body.get('chainId')}, but the trusted chain is {chain_id}",
            "other-registry",
        )
    if registry is not None and str(body.get("registry", "")).lower() != registry.lower():
        raise SnapshotRefused(
            f"{path} is of registry {body.get('registry')}, but the trusted registry is {registry}",
            "other-registry",
        )


def _check_sm2(path: Path, sm2: object, text: str, pinned: bytes) -> None:
    """Return if `sm2` is the pinned governor SM2 key's signature of `text`."""
    if sm2 is None:
        raise SnapshotRefused(
            f"{path} has no SM2 co-signature, but you pin the governor's SM2 key "
            f"{pinned.hex()[:16]}…: it was exported without one (or it was removed)",
            "unsigned",
        )
    try:
        assert isinstance(sm2, dict)
        named = bytes.fromhex(sm2["publicKey"])
        signature = bytes.fromhex(sm2["signature"])
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise SnapshotRefused(
            f"{path}: its SM2 co-signature cannot be read ({exc})", "signature"
        ) from None
    if named != pinned:
        raise SnapshotRefused(
            f"{path} is co-signed by SM2 key {named.hex()[:16]}…, not by the governor's SM2 "
            f"key you pin ({pinned.hex()[:16]}…)",
            "signature",
        )
    try:
        seal.verify(pinned, text.encode("utf-8"), signature)
    except seal.SealUnavailable as exc:
        raise SnapshotRefused(
            f"{path}: the SM2 co-signature cannot be checked here: {exc}", "signature"
        ) from None
    except seal.SealError:
        raise _ContentMismatch(
            f"{path}: the governor's SM2 co-signature does not match the snapshot's content "
            "(it was altered after signing, or signed by another key)"
        ) from None


class _Statuses:
    """The changed statuses by (agency id, leaf), compactly: `keys` holds the sorted
    20-byte keys end to end, `which[i]` the index of key i's state in `states` (states
    repeat: a batch revoked leaf by leaf in one block shares one). A million statuses
    take 24 MB here, against some 250 MB as a dict of tuples and LeafStates."""

    def __init__(self) -> None:
        self.states: list[LeafState] = []
        self.keys = bytearray()
        self.which = array.array("I")
        self._codes = {int(s): s for s in LeafStatus}
        self._state_numbers: dict[tuple[Any, ...], int] = {}
        self._keys = bytearray()
        self._ordered = True
        self._last = b""

    @classmethod
    def of(cls, rows: list[list[Any]]) -> _Statuses:
        """The look-up of these rows ([agencyId, leaf, status, reason, block, successor])."""
        made = cls()
        made.add(rows)
        made.finish()
        return made

    def add(self, rows: list[list[Any]]) -> None:
        """Take rows, in any order (a later row for the same licence wins)."""
        numbers, which, keys = self._state_numbers, self.which, self._keys
        for agency_id, leaf, status, reason, block, successor in rows:
            key = int(agency_id).to_bytes(4, "big") + bytes.fromhex(leaf)
            if len(key) != _KEY_BYTES:
                raise ValueError(f"a leaf id has {_LEAF_BYTES} bytes, not {len(key) - 4}")
            if self._ordered and key <= self._last:
                self._ordered = False
            self._last = key
            number = numbers.get((status, reason, block, successor))
            if number is None:
                number = numbers[(status, reason, block, successor)] = len(self.states)
                self.states.append(
                    LeafState(
                        self._codes[status],
                        int(reason),
                        int(block),
                        None if successor is None else bytes.fromhex(successor),
                    )
                )
            keys += key
            which.append(number)

    def finish(self) -> None:
        """Sort the keys if the rows were not in order (as exported: by agency, leaf)."""
        keys, which = self._keys, self.which
        if not self._ordered:
            merged = {
                bytes(keys[i * _KEY_BYTES : (i + 1) * _KEY_BYTES]): which[i]
                for i in range(len(which))
            }
            ordered = sorted(merged)
            keys = bytearray(b"".join(ordered))
            self.which = array.array("I", (merged[k] for k in ordered))
        self.keys = keys  # not copied to bytes: that would hold both at once
        self._keys = bytearray()
        self._state_numbers = {}

    def __len__(self) -> int:
        return len(self.which)

    def get(self, agency_id: int, leaf: bytes) -> LeafState | None:
        """The state of (agency, leaf), or None if it is not changed (binary search)."""
        if len(leaf) != _LEAF_BYTES or not 0 <= agency_id < 2**32:
            return None
        key = agency_id.to_bytes(4, "big") + leaf
        keys, low, high = self.keys, 0, len(self.which)
        while low < high:
            middle = (low + high) // 2
            if keys[middle * _KEY_BYTES : (middle + 1) * _KEY_BYTES] < key:
                low = middle + 1
            else:
                high = middle
        if low < len(self.which) and keys[low * _KEY_BYTES : (low + 1) * _KEY_BYTES] == key:
            return self.states[self.which[low]]
        return None


@dataclass(frozen=True, kw_only=True)
class TrustSnapshot:
    """A checked snapshot as a LedgerSource (verifier.source): the checks of
    verifier.checks run on it as on the index. `body` is the signed body's header: every
    member but the anchors, statuses, batch revocations and licence types, which are in
    the look-ups. `published` maps (code, version) to (definition hash, block) and
    `definitions` to the definition's bytes, each already checked against that hash."""

    body: dict[str, Any]
    sha256: str
    agencies: dict[int, Agency]
    anchors: dict[bytes, Anchor]
    leaves: _Statuses
    batch_revocations: dict[bytes, LeafState]
    compromises: dict[tuple[int, int], int]
    seal_keys: dict[int, list[SealKey]]
    published: dict[tuple[int, int], tuple[bytes, int]] = field(default_factory=dict)
    definitions: dict[tuple[int, int], bytes] = field(default_factory=dict)

    @property
    def chain_id(self) -> int:
        """The chain of the registry."""
        return int(self.body["chainId"])

    @property
    def registry_address(self) -> str:
        """The registry the snapshot describes."""
        return str(self.body["registry"])

    @property
    def governor(self) -> str:
        """The governor who signed it."""
        return str(self.body["governor"])

    @property
    def block_time(self) -> dt.datetime:
        """When the snapshot's block was made."""
        return dt.datetime.fromtimestamp(int(self.body["blockTime"]), dt.UTC)

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        """How old the snapshot's knowledge is."""
        return (now or dt.datetime.now(dt.UTC)) - self.block_time

    def block_number(self) -> int:
        """The block the snapshot is as of."""
        return int(self.body["blockNumber"])

    def anchor_of(self, root: bytes) -> Anchor | None:
        """The anchor of a batch root, or None."""
        return self.anchors.get(root)

    def agency(self, agency_id: int) -> Agency:
        """An agency by id (LookupError for an unknown id)."""
        try:
            return self.agencies[agency_id]
        except KeyError:
            raise LookupError(f"agency {agency_id} is not in the snapshot") from None

    def status_of(self, root: bytes, leaf: bytes) -> LeafState:
        """As the index answers (ledger.index.RegistryIndex.status_of)."""
        anchor = self.anchors.get(root)
        own = self.leaves.get(anchor.agency_id if anchor else 0, leaf) or _ACTIVE
        if own.status in FINAL:
            return own
        return self.batch_revocations.get(root, own)

    def compromised_from(self, agency_id: int, key_number: int) -> int | None:
        """The block from which that agency key was reported compromised, or None."""
        return self.compromises.get((agency_id, key_number))

    def seal_key_at(self, agency_id: int, block_number: int) -> SealKey | None:
        """The agency's SM2 seal key for batches anchored in `block_number`: its newest
        seal key valid from that block or earlier (the registry's sealKeyAt); None if
        it had none then."""
        found = None
        for key in self.seal_keys.get(agency_id, ()):
            if key.valid_from <= block_number and (
                found is None or key.valid_from >= found.valid_from
            ):
                found = key
        return found

    def counts(self) -> dict[str, int]:
        """How many agencies, anchors, changed statuses and published type versions it
        holds."""
        return {
            "agencies": len(self.agencies),
            "anchors": len(self.anchors),
            "statuses": len(self.leaves),
            "licenceTypes": len(self.published),
        }

    # The registry's licence types, with the names and results of ledger.registry.Registry
    # and ledger.index.RegistryIndex, so that what loads a type version from those loads
    # it from a snapshot too.

    def licence_type(self, code: int, version: int) -> PublishedType | None:
        """The published version (its definition hash and block), or None."""
        from ledger.registry import PublishedType

        found = self.published.get((code, version))
        if found is None:
            return None
        return PublishedType(
            code=code, version=version, definition_hash=found[0], block_number=found[1]
        )

    def latest_type_version(self, code: int) -> int:
        """The newest version of a type published as of the snapshot (0 when none)."""
        return max((v for c, v in self.published if c == code), default=0)

    def licence_type_definition(self, code: int, version: int) -> bytes | None:
        """The definition as published (checked against its hash when loaded), or None."""
        return self.definitions.get((code, version))

    def published_types(self) -> list[PublishedType]:
        """Every published version, by code and version."""
        found = (self.licence_type(code, version) for code, version in sorted(self.published))
        return [t for t in found if t is not None]

    def licence_types(self) -> list[LicenceType]:
        """The published versions this verifier can read, as licence types: each parsed
        from its definition, whose canonical form hashes to the registry's hash."""
        return list(self._readable[0].values())

    def unreadable_types(self) -> dict[tuple[int, int], str]:
        """The published versions left out of `licence_types()`, with the reason."""
        return dict(self._readable[1])

    @cached_property
    def _readable(self) -> tuple[dict[tuple[int, int], LicenceType], dict[tuple[int, int], str]]:
        from licence.catalogue_rules import parse_definition_text

        readable: dict[tuple[int, int], LicenceType] = {}
        unreadable: dict[tuple[int, int], str] = {}
        for (code, version), definition in sorted(self.definitions.items()):
            source = f"trust snapshot: licence type {code} version {version}"
            try:
                parsed = parse_definition_text(definition.decode("utf-8"), source)
            except DefinitionError as exc:
                unreadable[(code, version)] = str(exc)
                continue
            recorded = self.published[(code, version)][0]
            if (parsed.code, parsed.version) != (code, version):
                unreadable[(code, version)] = (
                    f"{source}: it defines type {parsed.code} version {parsed.version}"
                )
            elif parsed.definition_hash != recorded:
                unreadable[(code, version)] = (
                    f"{source}: its canonical form hashes to {parsed.definition_hash.hex()}, "
                    f"not to the registry's {recorded.hex()}"
                )
            else:
                readable[(code, version)] = parsed
        return readable, unreadable


def _build(body: dict[str, Any], sha256: str, statuses: _Statuses | None = None) -> TrustSnapshot:
    agencies: dict[int, Agency] = {}
    compromises: dict[tuple[int, int], int] = {}
    seal_keys: dict[int, list[SealKey]] = {}
    for raw in body["agencies"]:
        keys = raw["keys"]
        agencies[raw["id"]] = Agency(
            id=raw["id"],
            signer=to_checksum_address(keys[-1]["address"]),
            licence_types=frozenset(raw["licenceTypes"]),
            retired=bool(raw["retired"]),
            code=raw["code"],
            name=raw["name"],
        )
        for key in keys:
            if key["compromisedFromBlock"] is not None:
                compromises[(raw["id"], key["number"])] = key["compromisedFromBlock"]
        seal_keys[raw["id"]] = [
            SealKey(
                agency_id=raw["id"],
                number=int(key["number"]),
                public_key=bytes.fromhex(key["publicKey"]),
                valid_from=int(key["validFrom"]),
                compromised_from=key["compromisedFromBlock"],
            )
            for key in raw.get("sealKeys", ())
        ]
    published, definitions = _published_types(body["licenceTypes"])
    width = len(ANCHOR_COLUMNS)
    anchors = {}
    for row in body["anchors"]:
        if len(row) != width:
            raise ValueError(f"an anchor has {len(row)} columns, not {width}")
        anchors[bytes.fromhex(row[0])] = Anchor(bytes.fromhex(row[0]), *row[1:width])
    leaves = _Statuses.of(body["statuses"]) if statuses is None else statuses
    batches = {
        bytes.fromhex(root): LeafState(LeafStatus.REVOKED, reason, block, None, batch_revoked=True)
        for root, reason, block in body["batchRevocations"]
    }
    return TrustSnapshot(
        body={name: value for name, value in body.items() if name not in TABLES},
        sha256=sha256,
        agencies=agencies,
        anchors=anchors,
        leaves=leaves,
        batch_revocations=batches,
        compromises=compromises,
        seal_keys=seal_keys,
        published=published,
        definitions=definitions,
    )


def _published_types(
    entries: list[dict[str, Any]],
) -> tuple[dict[tuple[int, int], tuple[bytes, int]], dict[tuple[int, int], bytes]]:
    """The body's licence types as look-ups, every definition checked against its hash.

    Raises:
        SnapshotRefused: a definition does not hash to the hash stated beside it.
        ValueError (or KeyError, TypeError): an entry is not of this format.
    """
    published: dict[tuple[int, int], tuple[bytes, int]] = {}
    definitions: dict[tuple[int, int], bytes] = {}
    for entry in entries:
        code, version, stated, text, block = (entry[name] for name in TYPE_MEMBERS)
        if not all(type(n) is int for n in (code, version, block)):
            raise ValueError("a licence type's code, version and block are integers")
        if (code, version) in published:
            raise ValueError(f"licence type {code} version {version} is listed twice")
        if not isinstance(stated, str) or len(stated) != 64 or stated != stated.lower():
            raise ValueError("a definition hash is 64 lowercase hex digits")
        if not isinstance(text, str):
            raise ValueError("a definition is JSON text")
        recorded = bytes.fromhex(stated)
        definition = text.encode("utf-8", "surrogatepass")
        actual = hashlib.sha256(definition).digest()
        if actual != recorded:
            raise SnapshotRefused(
                f"its definition of licence type {code} version {version} hashes to "
                f"{actual.hex()}, not to the {stated} it names for it (and the registry "
                "recorded): it was not exported from a sound index",
                "definition",
            )
        published[(code, version)] = (recorded, block)
        definitions[(code, version)] = definition
    return published, definitions
