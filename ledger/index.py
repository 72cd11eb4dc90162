"""A local index of the registry, kept from its events: licence types, agencies, anchors,
leaf statuses.

Verification reads this index instead of calling the chain, so a verdict costs a few
dictionary look-ups. The index is a SQLite file (durable, rebuilt from nothing when
deleted) plus the same state in memory (read without touching disk).

Sync: events are read by block range up to `head - confirmations` (0 on a
single-node chain; a few blocks on a BFT or proof-of-stake network). The ranges adapt to
the chain's density and to what the node accepts, and logs are decoded straight from
their hex (``ledger.sync``). Each range is applied in one SQLite transaction: its events
in an `events` journal, the state rows they changed (`agencies`, `anchors`, `leaves`,
`batch_revocations`, `compromises`), the new sync height and its block hash, so a
process killed mid-sync resumes from the last range it committed, with nothing lost or
applied twice. Opening the index reads the state tables, not the journal. Before each
sync the stored hash of the last synced block is compared with the chain's: when they
differ the chain was reorganised, so the index walks back through its stored hashes to
the last block both agree on, deletes the journal past it and rebuilds the state from
the journal.

Leaf statuses are kept as the registry keeps them: per (anchoring agency, leaf), so a
licence id an agency revoked stays revoked under any root that agency anchors, and a
root revoked as a whole (`BatchRevoked`) reads as revoked for every leaf whose own
status is not final. Each anchor carries the number of the agency key that made it
(counted from `AgencyRegistered` and `SignerRotated`), so that a `SignerCompromised`
report names its anchors. Each agency's SM2 seal keys (`seal_keys`, from
`SealKeyRegistered` and `SealKeyCompromised`) answer which key sealed a batch anchored
in a given block. Published licence type versions (`licence_types`, from
`LicenceTypePublished`) are kept with their definitions, each checked against the hash
its log records, and each agency's authorised types (from `AgencyTypeAuthorised`), so a
verifier loads a type version it lacks from here without asking the chain. The file
records the version of these rules (`schema`); an index written under older rules is
emptied and synced again from its start block.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import orjson
from eth_typing import ChecksumAddress
from web3 import Web3

from contracts import load_artifact
from ledger.chain import translate_errors
from ledger.errors import IndexMismatch, TypeDefinitionMismatch
from ledger.private import private_database
from ledger.registry import Agency, Anchor, LeafState, PublishedType, Registry, SealKey
from ledger.sync import MAX_SPAN, EventDecoder, RangePlanner, RegistryEvent, log_reader, read_ranges
from licence.statuses import FINAL, LeafStatus

# The most blocks one eth_getLogs asks for (ranges start smaller and adapt, ledger.sync).
DEFAULT_STEP = MAX_SPAN
# 2: statuses per (agency, leaf), batch revocations, key numbers and compromised keys.
# 3: the state kept in tables beside the journal (opening reads them, not the journal).
# 4: the agencies' SM2 seal keys and their compromises (`seal_keys`).
# 5: published licence types (`licence_types`), types authorised per agency (not a
#    bitmask), anchors' type versions.
SCHEMA_VERSION = 5
KEEP_HASHES = 256  # how far back a reorganisation can be followed (in synced ranges)

_TABLES = {
    "block_hashes": "(number INTEGER PRIMARY KEY, hash TEXT NOT NULL)",
    "events": "(block_number INTEGER NOT NULL, log_index INTEGER NOT NULL, "
    "tx_hash TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL, "
    "timestamp INTEGER NOT NULL, PRIMARY KEY (block_number, log_index)) WITHOUT ROWID",
    # licence_types: the codes as a JSON array, ascending.
    "agencies": "(id INTEGER PRIMARY KEY, signer TEXT NOT NULL, licence_types TEXT NOT NULL,"
    " retired INTEGER NOT NULL, code TEXT NOT NULL, name TEXT NOT NULL, "
    "key_number INTEGER NOT NULL)",
    "anchors": "(root BLOB PRIMARY KEY, agency_id INTEGER NOT NULL, "
    "licence_type INTEGER NOT NULL, count INTEGER NOT NULL, block_number INTEGER NOT NULL, "
    "timestamp INTEGER NOT NULL, key_number INTEGER NOT NULL, tx_hash TEXT NOT NULL, "
    "type_version INTEGER NOT NULL) WITHOUT ROWID",
    "leaves": "(agency_id INTEGER NOT NULL, leaf BLOB NOT NULL, status INTEGER NOT NULL, "
    "reason INTEGER NOT NULL, block_number INTEGER NOT NULL, successor BLOB, "
    "PRIMARY KEY (agency_id, leaf)) WITHOUT ROWID",
    "batch_revocations": "(root BLOB PRIMARY KEY, reason INTEGER NOT NULL, "
    "block_number INTEGER NOT NULL) WITHOUT ROWID",
    "compromises": "(agency_id INTEGER NOT NULL, key_number INTEGER NOT NULL, "
    "from_block INTEGER NOT NULL, PRIMARY KEY (agency_id, key_number)) WITHOUT ROWID",
    "seal_keys": "(agency_id INTEGER NOT NULL, number INTEGER NOT NULL, "
    "public_key BLOB NOT NULL, valid_from INTEGER NOT NULL, compromised_from INTEGER, "
    "PRIMARY KEY (agency_id, number)) WITHOUT ROWID",
    "licence_types": "(code INTEGER NOT NULL, version INTEGER NOT NULL, "
    "definition_hash BLOB NOT NULL, definition BLOB NOT NULL, block_number INTEGER NOT NULL, "
    "PRIMARY KEY (code, version)) WITHOUT ROWID",
}
_STATE_TABLES = (
    "agencies",
    "anchors",
    "leaves",
    "batch_revocations",
    "compromises",
    "seal_keys",
    "licence_types",
)
_UPSERT = {
    "agencies": "INSERT OR REPLACE INTO agencies VALUES (?, ?, ?, ?, ?, ?, ?)",
    "anchors": "INSERT OR REPLACE INTO anchors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "leaves": "INSERT OR REPLACE INTO leaves VALUES (?, ?, ?, ?, ?, ?)",
    "batch_revocations": "INSERT OR REPLACE INTO batch_revocations VALUES (?, ?, ?)",
    "compromises": "INSERT OR REPLACE INTO compromises VALUES (?, ?, ?)",
    "seal_keys": "INSERT OR REPLACE INTO seal_keys VALUES (?, ?, ?, ?, ?)",
    "licence_types": "INSERT OR REPLACE INTO licence_types VALUES (?, ?, ?, ?, ?)",
}


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
    # agency id -> its seal keys, by number (key k at index k - 1)
    seal_keys: dict[int, list[SealKey]] = field(default_factory=dict)
    # (code, version) -> the published version; the definitions stay in the file
    licence_types: dict[tuple[int, int], PublishedType] = field(default_factory=dict)


class _Writes:
    """The state rows one range changed, per table, in the order they changed (a later
    row for the same key replaces an earlier one)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _STATE_TABLES}
        # Leaves changed together (one block, one status) share one LeafState.
        self.shared: dict[tuple[int, int, int, bytes | None], LeafState] = {}


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
        self._lock = threading.RLock()
        self._decoder = EventDecoder(load_artifact().abi)
        self._reader = log_reader(self._w3)
        # Kept across syncs: what the node accepted and how dense the chain is.
        self._planner = RangePlanner(ceiling=step)
        self.path = path
        private_database(path)  # 0600 in a 0700 folder (ledger.private)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed range survives a killed process; after a power
        # loss the last ranges may be synced again (the index is rebuilt from the chain
        # anyway), never half of one.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB: the leaves' B-tree
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._check_identity(start_block)
        self._check_schema()
        self._synced = int(self._meta("synced_block"))
        self._state = self._load_state()

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

    def seal_key_at(self, agency_id: int, block_number: int) -> SealKey | None:
        """The agency's seal key for batches anchored in `block_number` (the newest valid
        from that block or earlier), or None if it had none then."""
        for key in reversed(self._state.seal_keys.get(agency_id, ())):
            if key.valid_from <= block_number:
                return key
        return None

    def seal_keys(self) -> list[SealKey]:
        """Every agency's seal keys, by agency and number (a trust snapshot lists them)."""
        keys = self._state.seal_keys
        return [key for agency_id in sorted(keys) for key in keys[agency_id]]

    def licence_type(self, code: int, version: int) -> PublishedType | None:
        """Version `version` of licence type `code` as published, or None."""
        return self._state.licence_types.get((code, version))

    def latest_type_version(self, code: int) -> int:
        """The latest published version of licence type `code` (0: none)."""
        return max((v for c, v in self._state.licence_types if c == code), default=0)

    def published_types(self) -> list[PublishedType]:
        """Every published licence type version, by code and version."""
        types = self._state.licence_types
        return [types[key] for key in sorted(types)]

    def licence_type_definition(self, code: int, version: int) -> bytes | None:
        """The definition bytes of version `version` of type `code` (checked against its
        hash when synced), or None if the index has not seen it published."""
        with self._lock:
            row = self._db.execute(
                "SELECT definition FROM licence_types WHERE code = ? AND version = ?",
                (code, version),
            ).fetchone()
        return None if row is None else bytes(row[0])

    def anchor_transaction(self, root: bytes) -> str | None:
        """The hash of the transaction that anchored `root`, or None (a verdict names it
        so that anyone can look the anchor up in a block explorer)."""
        with self._lock:
            row = self._db.execute("SELECT tx_hash FROM anchors WHERE root = ?", (root,)).fetchone()
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
        """Apply every new event up to `head - confirmations`, range by range.

        Raises:
            ChainUnreachable: the node stopped answering (what was committed stays).
            ChainReadFailed: the node refuses the logs of a single block.
        """
        with self._lock:
            if head is None:
                with translate_errors():
                    head = int(self._w3.eth.block_number)
            reorganised_from = self._follow_reorganisation()
            start = self.synced_block + 1
            target = head - self.confirmations
            applied = 0
            ranges = read_ranges(self._reader, self.registry_address, start, target, self._planner)
            for low, high, logs in ranges:
                applied += self._apply_range(low, high, logs)
            return SyncReport(start, max(target, start - 1), applied, reorganised_from)

    def _apply_range(self, low: int, high: int, logs: list[dict[str, Any]]) -> int:
        decode = self._decoder.decode
        events = [event for log in logs if (event := decode(log)) is not None]
        events = self._with_anchor_times(events)
        end_hash = self._reader.block_hash(high)
        writes = _Writes()
        state = self._state
        try:
            for event in events:
                _apply(state, event, writes)
            with self._transaction():
                stored = int(self._meta("synced_block"))
                if stored != low - 1:
                    # Another process (an `elicence index export` beside the service)
                    # synced this file meanwhile: take its state rather than doubling it.
                    raise _Moved
                self._db.executemany(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            e.block_number,
                            e.log_index,
                            e.tx_hash,
                            e.name,
                            # orjson: a tenth of json.dumps's time, which was a
                            # tenth of a whole sync.
                            orjson.dumps(e.args).decode(),
                            e.timestamp,
                        )
                        for e in events
                    ],
                )
                for table, rows in writes.rows.items():
                    if rows:
                        self._db.executemany(_UPSERT[table], rows)
                self._db.execute(
                    "INSERT OR REPLACE INTO block_hashes VALUES (?, ?)", (high, end_hash)
                )
                self._db.execute(
                    "DELETE FROM block_hashes WHERE number < (SELECT number FROM block_hashes "
                    "ORDER BY number DESC LIMIT 1 OFFSET ?)",
                    (KEEP_HASHES,),
                )
                self._set_meta("synced_block", str(high))
        except _Moved:
            self._reload()
            return 0
        except BaseException:
            # Memory ran ahead of the file: go back to what the file holds.
            self._reload()
            raise
        self._synced = high
        return len(events)

    def _with_anchor_times(self, events: list[RegistryEvent]) -> list[RegistryEvent]:
        """Anchors get their block's time (verdicts show when a batch was anchored):
        from the log when the node sends it, else the blocks in one JSON-RPC batch."""
        missing = sorted(
            {e.block_number for e in events if e.name == "BatchAnchored" and not e.timestamp}
        )
        if not missing:
            return events
        times = self._reader.timestamps(missing)
        return [
            replace(e, timestamp=times[e.block_number])
            if e.name == "BatchAnchored" and not e.timestamp
            else e
            for e in events
        ]

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
            current = self._reader.block_hash(number)
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
            self._store_state(self._replay_journal())
        self._reload()

    def _replay_journal(self) -> tuple[_State, _Writes]:
        """The state the journal leads to, and every row of it."""
        state = _State({}, {}, {})
        writes = _Writes()
        rows = self._db.execute(
            "SELECT block_number, log_index, tx_hash, name, args, timestamp FROM events "
            "ORDER BY block_number, log_index"
        )
        for block, index, tx_hash, name, args, timestamp in rows:
            _apply(
                state,
                RegistryEvent(block, index, tx_hash, name, json.loads(args), timestamp),
                writes,
            )
        return state, writes

    def _store_state(self, replayed: tuple[_State, _Writes]) -> None:
        for table in _STATE_TABLES:
            self._db.execute(f"DELETE FROM {table}")
            self._db.executemany(_UPSERT[table], replayed[1].rows[table])

    def _reload(self) -> None:
        self._synced = int(self._meta("synced_block"))
        self._state = self._load_state()

    def _load_state(self) -> _State:
        db = self._db
        state = _State({}, {}, {})
        for id_, signer, types, retired, code, name, key_number in db.execute(
            "SELECT * FROM agencies"
        ):
            state.agencies[id_] = Agency(
                id=id_,
                signer=Web3.to_checksum_address(signer),
                licence_types=frozenset(json.loads(types)),
                retired=bool(retired),
                code=code,
                name=name,
            )
            state.key_numbers[id_] = key_number
        state.anchors = {
            row[0]: Anchor(*row)
            for row in db.execute(
                "SELECT root, agency_id, licence_type, count, block_number, timestamp, "
                "key_number, type_version FROM anchors"
            )
        }
        state.licence_types = {
            (code, version): PublishedType(code, version, bytes(digest), block)
            for code, version, digest, block in db.execute(
                "SELECT code, version, definition_hash, block_number FROM licence_types"
            )
        }
        shared: dict[tuple[int, int, int, bytes | None], LeafState] = {}
        statuses = {int(s): s for s in LeafStatus}
        leaves = state.leaves
        for agency_id, leaf, status, reason, block, successor in db.execute("SELECT * FROM leaves"):
            key = (status, reason, block, successor)
            value = shared.get(key)
            if value is None:
                value = shared[key] = LeafState(statuses[status], reason, block, successor)
            leaves[(agency_id, leaf)] = value
        state.batch_revocations = {
            root: LeafState(LeafStatus.REVOKED, reason, block, None, batch_revoked=True)
            for root, reason, block in db.execute("SELECT * FROM batch_revocations")
        }
        state.compromises = {
            (agency_id, key_number): from_block
            for agency_id, key_number, from_block in db.execute("SELECT * FROM compromises")
        }
        for agency_id, number, public_key, valid_from, compromised_from in db.execute(
            "SELECT agency_id, number, public_key, valid_from, compromised_from FROM seal_keys "
            "ORDER BY agency_id, number"
        ):
            state.seal_keys.setdefault(agency_id, []).append(
                SealKey(agency_id, number, bytes(public_key), valid_from, compromised_from)
            )
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
            for table, columns in _TABLES.items():
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
                self._db.execute(f"CREATE TABLE {table} {columns}")
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


class _Moved(Exception):
    """The file's sync height is not the one this process last wrote."""


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _b(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _agency_row(state: _State, agency: Agency) -> tuple[Any, ...]:
    return (
        agency.id,
        agency.signer,
        json.dumps(sorted(agency.licence_types), separators=(",", ":")),
        int(agency.retired),
        agency.code,
        agency.name,
        state.key_numbers[agency.id],
    )


def _leaf_state(
    writes: _Writes, status: int, reason: int, block: int, successor: bytes | None
) -> LeafState:
    key = (status, reason, block, successor)
    found = writes.shared.get(key)
    if found is None:
        found = writes.shared[key] = LeafState(LeafStatus(status), reason, block, successor)
    return found


def _set_leaves(
    state: _State,
    writes: _Writes,
    root: str,
    leaves: Iterable[str],
    *,
    status: int,
    reason: int,
    block: int,
    successor: bytes | None = None,
) -> None:
    agency_id = state.anchors[_b(root)].agency_id
    changed = _leaf_state(writes, status, reason, block, successor)
    rows = writes.rows["leaves"]
    for leaf_hex in leaves:
        leaf = _b(leaf_hex)
        state.leaves[(agency_id, leaf)] = changed
        rows.append((agency_id, leaf, status, reason, block, successor))


def _apply(state: _State, event: RegistryEvent, writes: _Writes) -> None:
    """Change `state` as the registry changed when it emitted `event`, and note the rows
    that change in `writes`."""
    args = event.args
    match event.name:
        case "LeafStatusChanged":
            _set_leaves(
                state,
                writes,
                args["root"],
                (args["leaf"],),
                status=args["status"],
                reason=args["reason"],
                block=event.block_number,
            )
        case "LeafStatusesChanged":
            _set_leaves(
                state,
                writes,
                args["root"],
                args["leaves"],
                status=args["status"],
                reason=args["reason"],
                block=event.block_number,
            )
        case "LeafSuperseded":
            _set_leaves(
                state,
                writes,
                args["root"],
                (args["leaf"],),
                status=LeafStatus.SUPERSEDED,
                reason=args["reason"],
                block=event.block_number,
                successor=_b(args["successor"]),
            )
        case "BatchAnchored":
            root = _b(args["root"])
            anchor = state.anchors[root] = Anchor(
                root=root,
                agency_id=args["agencyId"],
                licence_type=args["licenceType"],
                count=args["count"],
                block_number=event.block_number,
                timestamp=event.timestamp,
                # Events come in log order, so the agency's current key made this anchor.
                key_number=state.key_numbers[args["agencyId"]],
                type_version=args["typeVersion"],
            )
            writes.rows["anchors"].append(
                (
                    root,
                    anchor.agency_id,
                    anchor.licence_type,
                    anchor.count,
                    anchor.block_number,
                    anchor.timestamp,
                    anchor.key_number,
                    event.tx_hash,
                    anchor.type_version,
                )
            )
        case "BatchRevoked":
            root = _b(args["root"])
            state.batch_revocations[root] = LeafState(
                LeafStatus.REVOKED, args["reason"], event.block_number, None, batch_revoked=True
            )
            writes.rows["batch_revocations"].append((root, args["reason"], event.block_number))
        case "SignerCompromised":
            key = (args["agencyId"], args["keyNumber"])
            state.compromises[key] = args["fromBlock"]
            writes.rows["compromises"].append((*key, args["fromBlock"]))
        case "SealKeyRegistered":
            sealed = SealKey(
                args["agencyId"],
                args["keyNumber"],
                _b(args["x"]) + _b(args["y"]),
                args["validFrom"],
            )
            state.seal_keys.setdefault(sealed.agency_id, []).append(sealed)
            writes.rows["seal_keys"].append(_seal_key_row(sealed))
        case "SealKeyCompromised":
            keys = state.seal_keys[args["agencyId"]]
            at = args["keyNumber"] - 1
            keys[at] = replace(keys[at], compromised_from=args["fromBlock"])
            writes.rows["seal_keys"].append(_seal_key_row(keys[at]))
        case "AgencyRegistered":
            state.key_numbers[args["agencyId"]] = 1
            _set_agency(
                state,
                writes,
                Agency(
                    id=args["agencyId"],
                    signer=Web3.to_checksum_address(args["signer"]),
                    licence_types=frozenset(),  # AgencyTypeAuthorised events follow
                    retired=False,
                    code=args["code"],
                    name=args["name"],
                ),
            )
        case "AgencyTypeAuthorised":
            types = state.agencies[args["agencyId"]].licence_types
            code = args["licenceType"]
            _change_agency(
                state,
                writes,
                args["agencyId"],
                licence_types=types | {code} if args["authorised"] else types - {code},
            )
        case "LicenceTypePublished":
            published = _published_type(event)
            state.licence_types[(published.code, published.version)] = published
            writes.rows["licence_types"].append(
                (
                    published.code,
                    published.version,
                    published.definition_hash,
                    _b(args["definition"]),
                    published.block_number,
                )
            )
        case "AgencyRetired":
            _change_agency(state, writes, args["agencyId"], retired=True)
        case "SignerRotated":
            state.key_numbers[args["agencyId"]] += 1
            _change_agency(
                state,
                writes,
                args["agencyId"],
                signer=Web3.to_checksum_address(args["newSigner"]),
            )
        case _:
            pass  # role grants and other events carry nothing verification reads


def _published_type(event: RegistryEvent) -> PublishedType:
    """The type version a `LicenceTypePublished` event publishes, once its definition is
    checked against the hash it records (a node could send any bytes)."""
    args = event.args
    code, version = args["licenceType"], args["version"]
    recorded = _b(args["definitionHash"])
    computed = hashlib.sha256(_b(args["definition"])).digest()
    if computed != recorded:
        raise TypeDefinitionMismatch(
            code,
            version,
            f"its definition hashes to 0x{computed.hex()}, the log records 0x{recorded.hex()}",
        )
    return PublishedType(code, version, recorded, event.block_number)


def _seal_key_row(key: SealKey) -> tuple[Any, ...]:
    return (key.agency_id, key.number, key.public_key, key.valid_from, key.compromised_from)


def _set_agency(state: _State, writes: _Writes, agency: Agency) -> None:
    state.agencies[agency.id] = agency
    writes.rows["agencies"].append(_agency_row(state, agency))


def _change_agency(state: _State, writes: _Writes, agency_id: int, **changes: Any) -> None:
    _set_agency(state, writes, replace(state.agencies[agency_id], **changes))
