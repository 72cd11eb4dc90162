"""A local index of the registry, kept from its events: agencies, anchors, leaf statuses.

Verification reads this index instead of calling the chain, so a verdict costs a few
dictionary look-ups. The index is a SQLite file (durable, rebuilt from nothing when
deleted) plus the same state in memory (read without touching disk).

Sync: events are read by block range up to `head - confirmations` (0 on a
single-node chain; a few blocks on a BFT or proof-of-stake network) and applied in one
SQLite transaction per range, together with the new sync height and its block hash.
Every applied event is kept in an `events` journal. Before each sync the stored hash of
the last synced block is compared with the chain's: when they differ the chain was
reorganised, so the index walks back through its stored hashes to the last block both
agree on, deletes the journal past it and rebuilds the state from the journal.

Leaf statuses are kept as the registry keeps them: per (anchoring agency, leaf), so a
licence id an agency revoked stays revoked under any root that agency anchors, and a
root revoked as a whole (`BatchRevoked`) reads as revoked for every leaf whose own
status is not final. Each anchor carries the number of the agency key that made it
(counted from `AgencyRegistered` and `SignerRotated`), so that a `SignerCompromised`
report names its anchors. The file records the version of these rules (`schema`); an
index written under older rules is emptied and synced again from its start block.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from eth_typing import ABIEvent, ChecksumAddress
from eth_utils.abi import event_abi_to_log_topic
from web3 import Web3
from web3.types import FilterParams, LogReceipt

from contracts import load_artifact
from ledger.chain import translate_errors
from ledger.errors import IndexMismatch
from ledger.private import private_database
from ledger.registry import Agency, Anchor, LeafState, Registry, licence_types_from_mask
from licence.statuses import FINAL, LeafStatus

DEFAULT_STEP = 2_000
# 2: statuses per (agency, leaf), batch revocations, key numbers and compromised keys.
SCHEMA_VERSION = 2
KEEP_HASHES = 256  # how far back a reorganisation can be followed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS block_hashes (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    name TEXT NOT NULL, args TEXT NOT NULL, timestamp INTEGER NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
"""


@dataclass(frozen=True)
class SyncReport:
    """What one sync did."""

    from_block: int
    to_block: int
    events: int
    reorganised_from: int | None = None


@dataclass
class _State:
    agencies: dict[int, Agency]
    anchors: dict[bytes, Anchor]
    leaves: dict[tuple[int, bytes], LeafState]  # (anchoring agency id, leaf)
    key_numbers: dict[int, int] = field(default_factory=dict)  # agency id -> current key
    batch_revocations: dict[bytes, LeafState] = field(default_factory=dict)
    compromises: dict[tuple[int, int], int] = field(default_factory=dict)  # -> from block


_ACTIVE = LeafState(LeafStatus.ACTIVE, 0, 0, None)


class RegistryIndex:
    """The registry's state as of `synced_block`, kept from its events."""

    def __init__(
        self,
        path: Path,
        registry: Registry,
        *,
        confirmations: int = 0,
        start_block: int = 0,
        step: int = DEFAULT_STEP,
    ) -> None:
        self._registry = registry
        self._w3 = registry.chain.w3
        self.confirmations = confirmations
        self._step = step
        self._lock = threading.RLock()
        self._events = {
            event_abi_to_log_topic(cast(ABIEvent, item)): item
            for item in load_artifact().abi
            if item.get("type") == "event"
        }
        self._contract = self._w3.eth.contract(abi=list(load_artifact().abi))
        self._topic_of = {item["name"]: topic for topic, item in self._events.items()}
        private_database(path)  # 0600 in a 0700 folder (ledger.private)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._check_identity(start_block)
        self._check_schema()
        self._synced = int(self._meta("synced_block"))
        self._state = self._rebuild_state()

    # -- what verification reads (verifier.source.LedgerSource) --------------------------

    @property
    def chain_id(self) -> int:
        """The chain the registry lives on."""
        return self._registry.chain.chain_id

    @property
    def registry_address(self) -> ChecksumAddress:
        """The indexed registry."""
        return self._registry.address

    @property
    def synced_block(self) -> int:
        """The last block whose events are in the index."""
        # Kept in memory (every verification asks); refreshed after each commit.
        return self._synced

    def block_number(self) -> int:
        """The block height the index reflects."""
        return self.synced_block

    def anchor_of(self, root: bytes) -> Anchor | None:
        """The anchor of a batch root, or None."""
        return self._state.anchors.get(root)

    def agency(self, agency_id: int) -> Agency:
        """An agency by id (LookupError for an id the index has not seen)."""
        try:
            return self._state.agencies[agency_id]
        except KeyError:
            raise LookupError(f"agency {agency_id} is not in the index") from None

    def status_of(self, root: bytes, leaf: bytes) -> LeafState:
        """A licence's status under its root, as the registry's `statusOf` answers: the
        status the root's agency recorded for the leaf, or the batch's revocation."""
        state = self._state
        anchor = state.anchors.get(root)
        own = state.leaves.get((anchor.agency_id if anchor else 0, leaf), _ACTIVE)
        if own.status in FINAL:
            return own
        return state.batch_revocations.get(root, own)

    def compromised_from(self, agency_id: int, key_number: int) -> int | None:
        """The block from which that agency key was reported compromised, or None."""
        return self._state.compromises.get((agency_id, key_number))

    def anchor_transaction(self, root: bytes) -> str | None:
        """The hash of the transaction that anchored `root`, or None (from the journal: a
        verdict names it so that anyone can look the anchor up in a block explorer)."""
        with self._lock:
            row = self._db.execute(
                "SELECT tx_hash FROM events WHERE name = 'BatchAnchored' "
                "AND json_extract(args, '$.root') = ? ORDER BY block_number DESC LIMIT 1",
                ("0x" + root.hex(),),
            ).fetchone()
        return None if row is None else str(row[0])

    def agencies(self) -> list[Agency]:
        """Every agency, by id."""
        return [self._state.agencies[k] for k in sorted(self._state.agencies)]

    def counts(self) -> dict[str, int]:
        """How many agencies, anchors and changed leaves the index holds."""
        state = self._state
        return {
            "agencies": len(state.agencies),
            "anchors": len(state.anchors),
            "changedLeaves": len(state.leaves),
        }

    # -- keeping up with the chain --------------------------------------------------------

    def catch_up(self) -> int:
        """Sync if the chain has moved past the index; the height the index now reflects.

        One cheap eth_blockNumber when nothing is new; this is what makes a status change
        visible to the very next verification after its receipt.
        """
        with translate_errors():
            head = int(self._w3.eth.block_number)
        if head - self.confirmations > self.synced_block:
            self.sync(head)
        return self.synced_block

    def sync(self, head: int | None = None) -> SyncReport:
        """Apply every new event up to `head - confirmations`, range by range."""
        with self._lock:
            if head is None:
                with translate_errors():
                    head = int(self._w3.eth.block_number)
            reorganised_from = self._follow_reorganisation()
            start = self.synced_block + 1
            target = head - self.confirmations
            applied = 0
            for low in range(start, target + 1, self._step):
                high = min(low + self._step - 1, target)
                applied += self._apply_range(low, high)
            return SyncReport(start, max(target, start - 1), applied, reorganised_from)

    def _apply_range(self, low: int, high: int) -> int:
        with translate_errors():
            logs = self._w3.eth.get_logs(
                cast(
                    FilterParams,
                    {"address": self.registry_address, "fromBlock": low, "toBlock": high},
                )
            )
            end_hash = self._w3.eth.get_block(high)["hash"].to_0x_hex()
        anchor_topic = self._topic_of["BatchAnchored"]
        timestamps = self._timestamps(
            {
                int(log["blockNumber"])
                for log in logs
                if log["topics"] and bytes(log["topics"][0]) == anchor_topic
            }
        )
        decoded = [self._decode(log, timestamps) for log in logs]
        with self._transaction():
            for row in decoded:
                if row is None:
                    continue
                self._db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        row.block_number,
                        row.log_index,
                        row.tx_hash,
                        row.name,
                        json.dumps(row.args),
                        row.timestamp,
                    ),
                )
            self._db.execute("INSERT OR REPLACE INTO block_hashes VALUES (?, ?)", (high, end_hash))
            self._db.execute(
                "DELETE FROM block_hashes WHERE number < ?", (high - KEEP_HASHES * self._step,)
            )
            self._set_meta("synced_block", str(high))
        self._synced = high
        for row in decoded:
            if row is not None:
                _apply(self._state, row)
        return sum(1 for row in decoded if row is not None)

    def _timestamps(self, blocks: set[int]) -> dict[int, int]:
        """Block times for anchors (verdicts show when a batch was anchored), fetched in
        one JSON-RPC batch rather than one request per block."""
        if not blocks:
            return {}
        ordered = sorted(blocks)
        found: list[Any]
        with translate_errors():
            try:
                with self._w3.batch_requests() as batch:
                    for number in ordered:
                        batch.add(self._w3.eth.get_block(number))
                    found = list(batch.execute())
            except Exception:  # a node without batch support: ask one by one
                found = [self._w3.eth.get_block(number) for number in ordered]
        return {
            number: int(block["timestamp"]) for number, block in zip(ordered, found, strict=True)
        }

    def _decode(self, log: LogReceipt, timestamps: dict[int, int]) -> _Event | None:
        topics = log["topics"]
        item = self._events.get(bytes(topics[0])) if topics else None
        if item is None:
            return None
        args = self._contract.events[item["name"]]().process_log(log)["args"]
        block = int(log["blockNumber"])
        return _Event(
            block_number=block,
            log_index=int(log["logIndex"]),
            tx_hash=log["transactionHash"].to_0x_hex(),
            name=str(item["name"]),
            args={k: _jsonable(v) for k, v in args.items()},
            timestamp=timestamps.get(block, 0),  # only anchors need their time
        )

    def _follow_reorganisation(self) -> int | None:
        synced = self.synced_block
        if synced < 0:
            return None
        known = self._db.execute(
            "SELECT number, hash FROM block_hashes WHERE number <= ? ORDER BY number DESC",
            (synced,),
        ).fetchall()
        for number_value, stored in known:
            number = int(number_value)
            with translate_errors():
                current = self._w3.eth.get_block(number)["hash"].to_0x_hex()
            if current == stored:
                if number == synced:
                    return None
                self._roll_back_to(number)
                return number + 1
        # Nothing agrees (or nothing stored yet): start again from the first block.
        start = int(self._meta("start_block")) - 1
        self._roll_back_to(start)
        return start + 1 if known else None

    def _roll_back_to(self, block: int) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM events WHERE block_number > ?", (block,))
            self._db.execute("DELETE FROM block_hashes WHERE number > ?", (block,))
            self._set_meta("synced_block", str(block))
        self._synced = block
        self._state = self._rebuild_state()

    def _rebuild_state(self) -> _State:
        state = _State({}, {}, {})
        rows = self._db.execute(
            "SELECT block_number, log_index, tx_hash, name, args, timestamp FROM events "
            "ORDER BY block_number, log_index"
        )
        for block, index, tx_hash, name, args, timestamp in rows:
            _apply(state, _Event(block, index, tx_hash, name, json.loads(args), timestamp))
        return state

    # -- bookkeeping ----------------------------------------------------------------------

    def _check_identity(self, start_block: int) -> None:
        identity = {"chain_id": str(self.chain_id), "registry": self.registry_address}
        with self._transaction():
            for key, value in identity.items():
                stored = self._meta(key, None)
                if stored is None:
                    self._set_meta(key, value)
                elif stored != value:
                    raise IndexMismatch(
                        f"the index holds {key} {stored}, not {value}: "
                        "use another index file for another chain or registry"
                    )
            if self._meta("synced_block", None) is None:
                self._set_meta("start_block", str(start_block))
                self._set_meta("synced_block", str(start_block - 1))

    def _check_schema(self) -> None:
        """Empty an index kept under older rules (it is synced again from its start
        block); refuse one kept by a newer elicence."""
        stored = int(self._meta("schema", "0") or 0)
        if stored > SCHEMA_VERSION:
            raise IndexMismatch(
                f"the index has schema {stored}, newer than this elicence's {SCHEMA_VERSION}: "
                "upgrade elicence or use another index file"
            )
        if stored == SCHEMA_VERSION:
            return
        with self._transaction():
            # The journal is only what older rules kept; the chain has every event.
            self._db.execute("DELETE FROM events")
            self._db.execute("DELETE FROM block_hashes")
            self._set_meta("synced_block", str(int(self._meta("start_block")) - 1))
            self._set_meta("schema", str(SCHEMA_VERSION))

    def _meta(self, key: str, default: str | None = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            if default == "":
                raise IndexMismatch(f"index has no {key}")
            return cast(str, default)
        return str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        """Close the index file."""
        self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


@dataclass(frozen=True)
class _Event:
    block_number: int
    log_index: int
    tx_hash: str
    name: str
    args: dict[str, Any]
    timestamp: int


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _b(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _apply(state: _State, event: _Event) -> None:
    """Change `state` as the registry changed when it emitted `event`."""
    args = event.args
    match event.name:
        case "AgencyRegistered":
            state.key_numbers[args["agencyId"]] = 1
            state.agencies[args["agencyId"]] = Agency(
                id=args["agencyId"],
                signer=Web3.to_checksum_address(args["signer"]),
                licence_types=licence_types_from_mask(args["licenceTypes"]),
                retired=False,
                code=args["code"],
                name=args["name"],
            )
        case "AgencyTypesChanged":
            _replace_agency(
                state, args["agencyId"], licence_types=licence_types_from_mask(args["licenceTypes"])
            )
        case "AgencyRetired":
            _replace_agency(state, args["agencyId"], retired=True)
        case "SignerRotated":
            state.key_numbers[args["agencyId"]] += 1
            _replace_agency(
                state, args["agencyId"], signer=Web3.to_checksum_address(args["newSigner"])
            )
        case "BatchAnchored":
            root = _b(args["root"])
            state.anchors[root] = Anchor(
                root=root,
                agency_id=args["agencyId"],
                licence_type=args["licenceType"],
                count=args["count"],
                block_number=event.block_number,
                timestamp=event.timestamp,
                # Events come in log order, so the agency's current key made this anchor.
                key_number=state.key_numbers[args["agencyId"]],
            )
        case "LeafStatusChanged":
            agency_id = state.anchors[_b(args["root"])].agency_id
            state.leaves[(agency_id, _b(args["leaf"]))] = LeafState(
                LeafStatus(args["status"]), args["reason"], event.block_number, None
            )
        case "LeafStatusesChanged":
            agency_id = state.anchors[_b(args["root"])].agency_id
            changed = LeafState(
                LeafStatus(args["status"]), args["reason"], event.block_number, None
            )
            for leaf in args["leaves"]:
                state.leaves[(agency_id, _b(leaf))] = changed
        case "LeafSuperseded":
            agency_id = state.anchors[_b(args["root"])].agency_id
            state.leaves[(agency_id, _b(args["leaf"]))] = LeafState(
                LeafStatus.SUPERSEDED, args["reason"], event.block_number, _b(args["successor"])
            )
        case "BatchRevoked":
            state.batch_revocations[_b(args["root"])] = LeafState(
                LeafStatus.REVOKED, args["reason"], event.block_number, None, batch_revoked=True
            )
        case "SignerCompromised":
            state.compromises[(args["agencyId"], args["keyNumber"])] = args["fromBlock"]
        case _:
            pass  # role grants and other events carry nothing verification reads


def _replace_agency(state: _State, agency_id: int, **changes: Any) -> None:
    state.agencies[agency_id] = replace(state.agencies[agency_id], **changes)
