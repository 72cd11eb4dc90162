"""eth-tester (py-evm) as a chain: in memory for tests, or kept in SQLite for the node.

Imported only where an embedded chain is wanted: eth-tester and py-evm are heavy.

py-evm keeps the whole chain (headers, state trie, receipts) in one key-value store.
`SqliteStore` is that store in a SQLite table; writes collect in one open SQLite
transaction and `commit()` makes them durable at once, so a crash loses either all of a
block or none of it, never half.
"""

from __future__ import annotations

import ast
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from eth.abc import AtomicDatabaseAPI, ComputationAPI, SignedTransactionAPI, StateAPI
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.estimators.gas import binary_gas_search_intrinsic_tolerance
from eth.exceptions import CanonicalHeadNotFound, OutOfGas
from eth.vm.gas_meter import GasMeter
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed as TesterFailed
from eth_tester.exceptions import ValidationError as TesterInvalid
from eth_utils.exceptions import ValidationError as EvmInvalid
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from ledger.private import private_database


class Reverted(Exception):
    """A call or estimate reverted; `data` is the raw revert data when there is some."""

    def __init__(self, data: bytes | None, message: str) -> None:
        super().__init__(message)
        self.data, self.message = data, message


def _reverted(exc: Exception) -> Reverted:
    first: Any = exc
    while isinstance(first, Exception):  # eth-tester may wrap py-evm's Revert
        first = first.args[0] if first.args else ""
    if isinstance(first, str):
        try:
            first = ast.literal_eval(first)  # call() prints the revert bytes' repr
        except (ValueError, SyntaxError):
            return Reverted(None, first)
    return Reverted(first if isinstance(first, bytes) else None, str(first))


class CallTimeExceeded(OutOfGas):
    """A call or estimate ran past its time limit (py-evm halts it as out of gas)."""


class CallGuard:
    """A deadline for calls and estimates: py-evm has no timeout of its own, so the gas
    meter of every frame looks at the clock while the guard is armed.

    Mined transactions never run armed: a deadline there would make a block depend on
    the machine's speed.
    """

    CHECK_EVERY = 256  # gas charges between clock readings: ~0.1 ms of py-evm

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.stopped = False
        self.gas_used_at_stop = 0
        self._outer: GasMeter | None = None

    @contextmanager
    def armed(self, seconds: float) -> Iterator[CallGuard]:
        """Stop any frame still running `seconds` from now."""
        self.deadline, self.stopped, self.gas_used_at_stop = time.monotonic() + seconds, False, 0
        self._outer = None
        try:
            yield self
        finally:
            self.deadline, self._outer = None, None

    def meter(self, plain: GasMeter) -> GasMeter:
        """The meter a frame uses: `plain` itself unless armed."""
        if self.deadline is None:
            return plain
        guarded = _GuardedGasMeter(plain.start_gas, plain.refund_strategy, self)
        if self._outer is None:
            self._outer = guarded
        return guarded

    def stop(self) -> None:
        """Record the stop (and the gas the outermost frame had used by then)."""
        if not self.stopped and self._outer is not None:
            self.gas_used_at_stop = self._outer.start_gas - self._outer.gas_remaining
        self.stopped = True


class _GuardedGasMeter(GasMeter):
    def __init__(self, start_gas: int, refund_strategy: Any, guard: CallGuard) -> None:
        super().__init__(start_gas, refund_strategy)
        self._guard, self._charges = guard, 0

    def consume_gas(self, amount: int, reason: str) -> None:
        guard = self._guard
        self._charges += 1
        if guard.stopped or (
            self._charges % CallGuard.CHECK_EVERY == 0
            and guard.deadline is not None
            and time.monotonic() > guard.deadline
        ):
            guard.stop()  # every enclosing frame stops at its next charge too
            raise CallTimeExceeded("call limit: out of time")
        super().consume_gas(amount, reason)


def guarded(chain_class: type[Any], guard: CallGuard) -> type[Any]:
    """`chain_class` whose VMs meter gas through `guard`."""
    configuration = []
    for start, vm_class in chain_class.vm_configuration:
        state_class = vm_class._state_class
        computation_class = state_class.computation_class

        def configure_gas_meter(self: Any, _base: Any = computation_class) -> GasMeter:
            return guard.meter(_base._configure_gas_meter(self))

        computation = type(
            f"Guarded{computation_class.__name__}",
            (computation_class,),
            {"_configure_gas_meter": configure_gas_meter},
        )
        state = type(
            f"Guarded{state_class.__name__}", (state_class,), {"computation_class": computation}
        )
        vm = type(f"Guarded{vm_class.__name__}", (vm_class,), {"_state_class": state})
        configuration.append((start, vm))
    return type(
        f"Guarded{chain_class.__name__}", (chain_class,), {"vm_configuration": tuple(configuration)}
    )


def gas_needed(state: StateAPI, transaction: SignedTransactionAPI, cap: int | None = None) -> int:
    """The gas a transaction needs: one run at the block's gas limit (or `cap`, when
    lower), one to confirm.

    py-evm's own estimator bisects between 21,000 and the block gas limit, running the
    transaction a dozen times (77 ms for an anchor). What the first run consumed before
    refunds is nearly always enough, and the second run proves it; when it is not (a
    call that passes on 63/64 of the gas left), the bisection decides.
    """

    def run(gas: int) -> ComputationAPI:
        snapshot = state.snapshot()
        try:
            spoofed = SpoofTransaction(transaction, gas=gas, gas_price=0)
            return state.apply_transaction(cast(SignedTransactionAPI, spoofed))
        finally:
            state.revert(snapshot)

    limit = state.gas_limit if cap is None else min(cap, state.gas_limit)
    at_limit = run(limit)
    if at_limit.is_error:
        raise at_limit.error
    consumed = int(limit - at_limit.get_gas_remaining())
    if not run(consumed).is_error:
        return consumed
    return int(binary_gas_search_intrinsic_tolerance(state, transaction))


class Backend(PyEVMBackend):  # type: ignore[misc]
    """py-evm backend whose reverts keep their raw data.

    web3's tester provider would decode any revert whose data parses as one string
    (such as ``LicenceRegistryInvalidAgencyCode(string)``) as ``Error(string)`` and
    drop the selector, so reverts leave the backend as an exception it does not know.
    """

    gas_cap: int | None = None  # the most gas an estimate may run with

    def estimate_gas(self, transaction: Any, block_number: Any = "latest") -> Any:
        # Set on every call: eth-tester builds a new chain object when it resets.
        cap = self.gas_cap
        self.chain.gas_estimator = lambda state, tx: gas_needed(state, tx, cap)
        try:
            return super().estimate_gas(transaction, block_number)
        except TesterFailed as exc:
            raise _reverted(exc) from exc

    def call(self, transaction: Any, block_number: Any = "latest") -> Any:
        try:
            return super().call(transaction, block_number)
        except TesterFailed as exc:
            raise _reverted(exc) from exc


class Provider(EthereumTesterProvider):
    """eth-tester answering failures the way a JSON-RPC node does.

    A node answers a revert with an error object carrying the revert data, which web3
    turns into ContractCustomError; answering the same here means the embedded chain
    and a remote node fail identically.
    """

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except Reverted as exc:
            return revert_response(exc.data, exc.message)
        except (TesterInvalid, EvmInvalid) as exc:
            return invalid_response(str(exc))


def invalid_response(message: str) -> RPCResponse:
    """The error a node gives for a transaction it will not take."""
    if "cannot afford" in message:  # py-evm's wording; nodes say "insufficient funds"
        message = f"insufficient funds for gas * price + value: {message}"
    return error_response({"code": -32000, "message": message})


def revert_response(data: bytes | None, message: str) -> RPCResponse:
    """The error a node gives for a reverted call (code 3, the revert data attached)."""
    if data is None:
        return error_response({"code": 3, "message": f"execution reverted: {message}"})
    return error_response({"code": 3, "message": "execution reverted", "data": "0x" + data.hex()})


def error_response(error: dict[str, Any]) -> RPCResponse:
    """A JSON-RPC error answer."""
    return cast(RPCResponse, {"jsonrpc": "2.0", "id": 0, "error": error})


def faucet_of(backend: Backend) -> LocalAccount:
    """The first pre-funded account of eth-tester's genesis (its key is public)."""
    key: bytes = backend.account_keys[0].to_bytes()
    account: LocalAccount = Account.from_key(key)
    return account


def in_memory() -> tuple[Web3, LocalAccount]:
    """A fresh chain in this process, and its faucet account."""
    backend = Backend()
    return Web3(Provider(EthereumTester(backend))), faucet_of(backend)


class SqliteStore(BaseDB):
    """py-evm's key-value store as one SQLite table, committed explicitly."""

    def __init__(self, path: Path) -> None:
        private_database(path)  # 0600 in a 0700 folder (ledger.private)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL + FULL: a commit is on disk before commit() returns, and a reader never
        # sees half a commit.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kv "
            "(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
        )
        self._db.execute("BEGIN")

    def __getitem__(self, key: bytes) -> bytes:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def _exists(self, key: bytes) -> bool:
        return self._db.execute("SELECT 1 FROM kv WHERE key = ?", (key,)).fetchone() is not None

    def __delitem__(self, key: bytes) -> None:
        if self._db.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    @property
    def sql(self) -> sqlite3.Connection:
        """The connection, for tables kept beside the chain in the same transactions."""
        return self._db

    def commit(self) -> None:
        """Make every write since the last commit durable, all at once."""
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")

    def rollback(self) -> None:
        """Drop every write since the last commit."""
        self._db.execute("ROLLBACK")
        self._db.execute("BEGIN")

    def close(self) -> None:
        """Drop uncommitted writes and close the file."""
        self._db.execute("ROLLBACK")
        self._db.close()


def persistent(
    path: Path, guard: CallGuard | None = None
) -> tuple[EthereumTester, Backend, SqliteStore]:
    """A chain kept in the SQLite file at `path`: made from genesis the first time,
    resumed from its canonical head afterwards (no replay, so start-up does not grow
    with the chain). With `guard`, calls run under its deadline when it is armed."""
    store = SqliteStore(path)
    database: AtomicDatabaseAPI = AtomicDB(store)
    backend = Backend()  # an in-memory genesis, for its chain class and dev accounts
    memory_chain = backend.chain
    chain_class = type(memory_chain)
    if guard is not None:
        chain_class = guarded(chain_class, guard)
    try:
        backend.chain = chain_class(database)
    except CanonicalHeadNotFound:
        backend.chain = chain_class.from_genesis(
            database, _genesis_params(memory_chain), _genesis_state(backend)
        )
        store.commit()
    return EthereumTester(backend), backend, store


def reopen(backend: Backend, store: SqliteStore) -> None:
    """Rebuild the backend's chain object from what the store holds (after a rollback)."""
    backend.chain = type(backend.chain)(AtomicDB(store))


def _genesis_params(chain: Any) -> dict[str, Any]:
    header = chain.get_canonical_block_header_by_number(0)
    return {
        "coinbase": header.coinbase,
        "difficulty": header.difficulty,
        "extra_data": header.extra_data,
        "gas_limit": header.gas_limit,
        "mix_hash": header.mix_hash,
        "nonce": header.nonce,
        "receipt_root": header.receipt_root,
        "timestamp": header.timestamp,
        "transaction_root": header.transaction_root,
    }


def _genesis_state(backend: Backend) -> Any:
    from eth_tester.backends.pyevm.main import generate_genesis_state_for_keys

    return dict(generate_genesis_state_for_keys(backend.account_keys))
