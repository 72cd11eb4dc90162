"""Trust snapshots: what a verifier needs to know of the registry, signed by its
governor, to verify with no chain (a counter terminal offline, an inspector on a site).

Not the index snapshot of `ledger.snapshot`, which copies a replica's whole SQLite index
and is trusted as its source is: a trust snapshot holds only the state verification
reads, and carries its own proof of origin, so one taken from a USB stick or a mirror
can be trusted.

The file is gzip-compressed JSON (UTF-8):

    {"format": "elicence-trust-snapshot/1",
     "body": {
       "chainId": 31337, "registry": "0x…", "governor": "0x…",
       "blockNumber": N, "blockHash": "0x…", "blockTime": <unix seconds>,
       "agencies": [{"id", "code", "name", "licenceTypes": [codes], "retired",
                     "registeredAtBlock", "retiredAtBlock" (or null),
                     "keys": [{"number", "address", "fromBlock", "untilBlock" (or null),
                               "compromisedFromBlock" (or null)}]}],
       "anchorColumns": ["root", "agencyId", "licenceType", "count", "block", "time",
                         "keyNumber"],
       "anchors": [[<32 hex>, …], …],
       "statusColumns": ["agencyId", "leaf", "status", "reason", "block", "successor"],
       "statuses": [[1, <32 hex>, 2, 1, 812, <32 hex> or null], …],
       "batchRevocationColumns": ["root", "reason", "block"],
       "batchRevocations": [[<32 hex>, 3, 900], …]},
     "signatures": {
       "governor": {"address": "0x…", "signature": "0x<65 bytes>"},
       "sm2": null}}

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
"sm2" is where the governor's SM2 co-signature of the same text goes once agencies and
governors have SM2 keys (issue #18, `licence/seal.py`): `load_snapshot` will then check
it against the governor's registered SM2 key; until then it is null and not read.

SnapshotRefused (VerifierError, ValueError): the file is not a trust snapshot, its
signature or content was altered, it was signed by a key the verifier does not trust as
governor, or it is of another registry or chain.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address

from ledger.private import PRIVATE_FILE
from ledger.registry import Agency, Anchor, LeafState, licence_types_from_mask
from licence.statuses import FINAL, LeafStatus
from verifier.errors import VerifierError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from ledger.registry import Registry

FORMAT = "elicence-trust-snapshot/1"
INDEX_SCHEMA = 3  # the ledger.index schema whose tables `read_index` reads
ANCHOR_COLUMNS = ["root", "agencyId", "licenceType", "count", "block", "time", "keyNumber"]
STATUS_COLUMNS = ["agencyId", "leaf", "status", "reason", "block", "successor"]
BATCH_COLUMNS = ["root", "reason", "block"]
DEFAULT_MAX_AGE = dt.timedelta(days=7)
_ACTIVE = LeafState(LeafStatus.ACTIVE, 0, 0, None)


class SnapshotRefused(VerifierError, ValueError):
    """The trust snapshot cannot be trusted or read; the message says why."""


# -- exporting ---------------------------------------------------------------------------


def read_index(index_path: Path) -> dict[str, Any]:
    """The unsigned body of a snapshot, from a verifier's index file (ledger.index),
    read in one SQLite transaction so that every table is of the same height. The block
    time is left for `export_snapshot`, which asks the chain.

    Raises:
        SnapshotRefused: the file is not an index of the schema this module reads.
    """
    if not index_path.exists():
        raise SnapshotRefused(f"no index at {index_path}: sync one first (`elicence serve`)")
    db = sqlite3.connect(f"file:{index_path}?mode=ro", uri=True)
    try:
        db.execute("BEGIN")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if int(meta.get("schema") or 0) != INDEX_SCHEMA:
            raise SnapshotRefused(
                f"{index_path} has index schema {meta.get('schema')}, not {INDEX_SCHEMA}: "
                "sync it with this elicence first"
            )
        height = int(meta["synced_block"])
        row = db.execute("SELECT hash FROM block_hashes WHERE number = ?", (height,)).fetchone()
        body: dict[str, Any] = {
            "chainId": int(meta["chain_id"]),
            "registry": meta["registry"],
            "blockNumber": height,
            "blockHash": None if row is None else str(row[0]),
            "agencies": _agencies(db),
            "anchorColumns": ANCHOR_COLUMNS,
            "anchors": [
                [root.hex(), *rest]
                for root, *rest in db.execute(
                    "SELECT root, agency_id, licence_type, count, block_number, timestamp, "
                    "key_number FROM anchors ORDER BY block_number, root"
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


def _agencies(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Each agency with the history of its keys, from the state tables and the journal
    (the state keeps only the current key; validity and retirement need the events)."""
    agencies: dict[int, dict[str, Any]] = {}
    for id_, signer, types, retired, code, name, _ in db.execute(
        "SELECT * FROM agencies ORDER BY id"
    ):
        agencies[id_] = {
            "id": id_,
            "code": code,
            "name": name,
            "licenceTypes": sorted(licence_types_from_mask(types)),
            "retired": bool(retired),
            "registeredAtBlock": None,
            "retiredAtBlock": None,
            "keys": [],
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
    return list(agencies.values())


def _key(number: int, address: str, from_block: int | None) -> dict[str, Any]:
    return {
        "number": number,
        "address": to_checksum_address(address),
        "fromBlock": from_block,
        "untilBlock": None,
    }


def export_snapshot(
    index_path: Path, registry: Registry, governor: LocalAccount, destination: Path
) -> TrustSnapshot:
    """Sign the state of the index at `index_path` with the governor's chain key and
    write it (gzip JSON, atomically, mode 0600) to `destination`.

    The caller syncs the index first. The chain gives the snapshot block's time and
    confirms its hash (an index on a branch the chain has left is refused), and that
    `governor` holds the registry's GOVERNOR_ROLE.

    Raises:
        SnapshotRefused: the index is of another registry or chain, or on another branch,
            or `governor` is not a governor of the registry.
        ChainUnreachable: the chain did not answer.
    """
    body = read_index(index_path)
    if (
        body["chainId"] != registry.chain.chain_id
        or body["registry"].lower() != registry.address.lower()
    ):
        raise SnapshotRefused(
            f"{index_path} indexes registry {body['registry']} on chain {body['chainId']}, "
            f"not {registry.address} on chain {registry.chain.chain_id}"
        )
    if not registry.is_governor(governor.address):
        raise SnapshotRefused(
            f"{governor.address} is not a governor of registry {registry.address}: only a "
            "governor's key may sign a trust snapshot"
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
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    signed = governor.sign_message(encode_defunct(text=_message(body, digest)))
    document = {
        "format": FORMAT,
        "body": body,
        "signatures": {
            "governor": {"address": governor.address, "signature": "0x" + signed.signature.hex()},
            "sm2": None,
        },
    }
    data = gzip.compress(orjson.dumps(document), compresslevel=6, mtime=0)
    _write_atomically(destination, data)
    return _build(body, digest)


def _write_atomically(path: Path, data: bytes) -> None:
    """A private file that is never seen half-written (the verifier does not import
    issuing's issuer.files)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, PRIVATE_FILE)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
) -> TrustSnapshot:
    """The snapshot at `path`, once its signature is checked.

    `governors` are the addresses the verifier trusts as the registry's governor;
    `registry` and `chain_id`, when given, the registry it trusts.

    Raises:
        SnapshotRefused: unreadable, altered, signed by an untrusted key, or of another
            registry or chain.
    """
    try:
        document = orjson.loads(gzip.decompress(path.read_bytes()))
    except FileNotFoundError:
        raise SnapshotRefused(f"no trust snapshot at {path}") from None
    except (OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise SnapshotRefused(f"{path} is not a trust snapshot: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotRefused(f"{path} is not a trust snapshot of format {FORMAT}")
    try:
        body = document["body"]
        stated = to_checksum_address(document["signatures"]["governor"]["address"])
        signature = document["signatures"]["governor"]["signature"]
        digest = hashlib.sha256(_canonical(body)).hexdigest()
        signer = Account.recover_message(
            encode_defunct(text=_message(body, digest)), signature=signature
        )
    except (KeyError, TypeError, ValueError, BadSignature) as exc:
        # BadSignature: the signature names no point of the curve (it was altered).
        raise SnapshotRefused(f"{path}: its signature cannot be read ({exc})") from None
    if signer != stated or body.get("governor") != stated:
        raise SnapshotRefused(
            f"{path}: the governor's signature does not match the snapshot's content "
            "(it was altered after signing, or signed by another key)"
        )
    trusted = {to_checksum_address(a) for a in governors}
    if signer not in trusted:
        raise SnapshotRefused(
            f"{path} is signed by {signer}, which is not a governor you trust "
            f"({', '.join(sorted(trusted)) or 'none configured'})"
        )
    if chain_id is not None and body.get("chainId") != chain_id:
        raise SnapshotRefused(
            f"{path} is of chain {body.get('chainId')}, but the trusted chain is {chain_id}"
        )
    if registry is not None and str(body.get("registry", "")).lower() != registry.lower():
        raise SnapshotRefused(
            f"{path} is of registry {body.get('registry')}, but the trusted registry is {registry}"
        )
    try:
        return _build(body, digest)
    except (KeyError, TypeError, ValueError) as exc:  # signed, yet not of this format
        raise SnapshotRefused(f"{path}: its content is not a snapshot's ({exc})") from None


@dataclass(frozen=True, kw_only=True)
class TrustSnapshot:
    """A checked snapshot as a LedgerSource (verifier.source): the checks of
    verifier.checks run on it as on the index."""

    body: dict[str, Any]
    sha256: str
    agencies: dict[int, Agency]
    anchors: dict[bytes, Anchor]
    leaves: dict[tuple[int, bytes], LeafState]
    batch_revocations: dict[bytes, LeafState]
    compromises: dict[tuple[int, int], int]

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
        own = self.leaves.get((anchor.agency_id if anchor else 0, leaf), _ACTIVE)
        if own.status in FINAL:
            return own
        return self.batch_revocations.get(root, own)

    def compromised_from(self, agency_id: int, key_number: int) -> int | None:
        """The block from which that agency key was reported compromised, or None."""
        return self.compromises.get((agency_id, key_number))

    def counts(self) -> dict[str, int]:
        """How many agencies, anchors and changed statuses it holds."""
        return {
            "agencies": len(self.agencies),
            "anchors": len(self.anchors),
            "statuses": len(self.leaves),
        }


def _build(body: dict[str, Any], sha256: str) -> TrustSnapshot:
    statuses = {int(s): s for s in LeafStatus}
    agencies: dict[int, Agency] = {}
    compromises: dict[tuple[int, int], int] = {}
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
    anchors = {(root := bytes.fromhex(row[0])): Anchor(root, *row[1:7]) for row in body["anchors"]}
    shared: dict[tuple[int, int, int, str | None], LeafState] = {}
    leaves: dict[tuple[int, bytes], LeafState] = {}
    for agency_id, leaf, status, reason, block, successor in body["statuses"]:
        key = (status, reason, block, successor)
        value = shared.get(key)
        if value is None:
            value = shared[key] = LeafState(
                statuses[status],
                reason,
                block,
                None if successor is None else bytes.fromhex(successor),
            )
        leaves[(agency_id, bytes.fromhex(leaf))] = value
    batches = {
        bytes.fromhex(root): LeafState(LeafStatus.REVOKED, reason, block, None, batch_revoked=True)
        for root, reason, block in body["batchRevocations"]
    }
    return TrustSnapshot(
        body=body,
        sha256=sha256,
        agencies=agencies,
        anchors=anchors,
        leaves=leaves,
        batch_revocations=batches,
        compromises=compromises,
    )
