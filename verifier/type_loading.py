"""Loading a licence type version the process's catalogue lacks, checked against the
registry.

The registry records, for each (code, version) the governor published, the SHA-256 of
the definition's canonical JSON (`LicenceType.definition_hash`), and its
`LicenceTypePublished` event carries the definition itself. A verifier that meets a
licence of a type version it does not hold (`licence.errors.UnknownTypeVersion`) loads
it here and parses the licence again:

1. the recorded hash is read from the first record that has it: the local index of the
   registry's events (no chain read), else the registry (one read);
2. the definition is taken from a catalogue folder or URL when one is configured, else
   from the record itself (the index's copy of the event, else ONE `eth_getLogs`);
3. the copy is parsed and checked by `licence.catalogue_rules`, and its hash must equal
   the recorded one, else it is refused (DefinitionMismatch names the source, the code,
   the version and both hashes);
4. it is added to the process's catalogue (`Catalogue.add`), so the next licence of that
   version costs no read at all.

A version that cannot be loaded raises TypeUnavailable: the licence may be genuine, so
verifiers report "could not check", never TAMPERED.

Anyone can send a licence naming a made-up type, so a miss must cost next to nothing: a
loader parses each published definition (to learn its type's id) and reads its catalogue
folder once, and remembers what it could not load (a bounded number of (type, version)
pairs) together with what could change that answer: the records' published versions,
the folder's files and their modification times, the catalogue's size. A remembered miss
is answered again at the cost of comparing those, until a new publication or folder file
could turn it into a hit (the folder is listed only for a miss whose answer looked
there). A failure to read the catalogue URL is not remembered (the server may answer
later); an id longer than any definition may have is refused at once, and not kept.
`load_async` answers on the event loop held types, remembered misses, and misses that
what the loader has already read shows (an id no published definition names, a version
nobody published); it loads any other (type, version) in one thread at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from licence.catalogue import Catalogue, LicenceType, catalogue
from licence.errors import CatalogueError, UnknownLicenceType, UnknownTypeVersion
from verifier.errors import CouldNotCheck, DefinitionMismatch, TypeUnavailable

# A definition on chain is at most 16,384 bytes of canonical JSON; a copy may be indented.
MAX_DEFINITION_BYTES = 256 * 1024
URL_TIMEOUT_S = 5.0
# (type, version) pairs a loader remembers it could not load: enough for every version a
# real verifier meets, few enough that a stream of made-up ids holds a few hundred KiB.
MISSES_KEPT = 4096
# licence.catalogue_rules: a definition's id is at most 64 characters, so a longer one
# is refused at once (and not remembered: a document may name a 100 KB "id").
MAX_TYPE_ID_LENGTH = 64

T = TypeVar("T")


class PublishedRecord(Protocol):
    """A published version as the registry records it (ledger.registry.PublishedType)."""

    @property
    def code(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def definition_hash(self) -> bytes: ...
    @property
    def block_number(self) -> int: ...


class TypeRecords(Protocol):
    """Where the registry's record of published types is read: the chain itself
    (ledger.registry.Registry) or the local index of its events (ledger.index.RegistryIndex)."""

    def licence_type(self, code: int, version: int) -> PublishedRecord | None: ...
    def licence_type_definition(self, code: int, version: int) -> bytes | None: ...


def check_url(url: str) -> str:
    """`url` (a template naming {code} and {version}, and maybe {id}) if it may be read:
    https, or http to 127.0.0.1 only; ValueError otherwise."""
    parts = urllib.parse.urlsplit(url.replace("{", "").replace("}", ""))
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname == "127.0.0.1":
        return url
    raise ValueError(f"a catalogue URL must be https (or http://127.0.0.1), not {url!r}")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could lead off https; the copy is checked by hash anyway, but the
    # rule stays simple: the configured address or nothing.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def read_url(url: str, *, timeout: float = URL_TIMEOUT_S) -> bytes:
    """The body at `url`, at most MAX_DEFINITION_BYTES; OSError saying why not."""
    check_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with _OPENER.open(request, timeout=timeout) as response:
        if response.status != 200:
            raise OSError(f"{url} answered {response.status}")
        body: bytes = response.read(MAX_DEFINITION_BYTES + 1)
    if len(body) > MAX_DEFINITION_BYTES:
        raise OSError(f"{url} sent more than {MAX_DEFINITION_BYTES} bytes")
    return body


_Key = tuple[str | int, int, bytes | None]  # (type id or code, version, anchor root)
_Published = tuple[tuple[int, int, bytes], ...]  # (code, version, hash), by code and version
_FolderStamp = tuple[tuple[str, int, int], ...]  # (file name, mtime in ns, size), by name


class _Stamp:
    """What could turn a miss into a hit, as one request sees it: compared before a
    remembered miss is answered. The folder is listed only if the answer needs it."""

    def __init__(
        self, held: int, published: tuple[_Published | None, ...], folder: Path | None
    ) -> None:
        self.held = held  # the catalogue's number of types: a new id may name a known code
        self.published = published  # per records; None: it lists nothing
        self.base = (held, published)
        self._folder = folder
        self._listed: _FolderStamp | None = None

    @property
    def complete(self) -> bool:
        """Whether every source of records lists its publications: misses can then be
        remembered (a registry read on chain lists nothing, so a miss there is asked
        again)."""
        return None not in self.published

    @property
    def folder(self) -> _FolderStamp:
        """The catalogue folder's files, listed on first use."""
        assert self._folder is not None
        if self._listed is None:
            self._listed = _folder_stamp(self._folder)
        return self._listed

    @property
    def folder_seen(self) -> _FolderStamp | None:
        """The folder's files if the answer looked at them, else None."""
        return self._listed


class _Generations:
    """Numbers the successive values of a stamp: a miss keeps a number, not a stamp."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[object, int] | None = None

    def of(self, stamp: object) -> int:
        """The number of `stamp`: the same while it does not change."""
        last = self._last
        if last is not None and last[0] == stamp:
            return last[1]
        with self._lock:
            last = self._last
            if last is None or last[0] != stamp:
                last = self._last = (stamp, 0 if last is None else last[1] + 1)
        return last[1]


@dataclass(frozen=True)
class _Named:
    """The type ids of the published versions, by (id, version): their codes."""

    published: tuple[_Published | None, ...]
    held: int  # codes the catalogue knows are not parsed: it names them
    codes: dict[tuple[str, int], tuple[int, ...]]


@dataclass(frozen=True)
class _FolderCopies:
    """A catalogue folder's definitions as read at `stamp`, first file (by name) first."""

    stamp: _FolderStamp
    codes: dict[tuple[Any, Any], Any]  # (id, version) -> its `code` member
    copies: dict[tuple[Any, Any], tuple[Path, bytes]]  # (code, version) -> file, bytes


@dataclass
class TypeLoader:
    """Loads type versions from `records` (in order: the index before the chain), with
    the definitions from `folder` or `url` when given, into `into` (the process's
    catalogue unless told otherwise), remembering up to `keep_misses` versions it could
    not load. One loader serves every thread and event loop of a process."""

    records: Sequence[TypeRecords]
    folder: Path | None = None
    url: str | None = None
    into: Catalogue = field(default_factory=catalogue)
    read: Callable[[str], bytes] = read_url
    keep_misses: int = MISSES_KEPT
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # key -> (the generations it was refused in: of the records and the catalogue, and
    # of the folder if it looked there; a maker of its refusal)
    _misses: dict[_Key, tuple[int, int | None, Callable[[], TypeUnavailable]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _generations: _Generations = field(default_factory=_Generations, init=False, repr=False)
    _folder_generations: _Generations = field(default_factory=_Generations, init=False, repr=False)
    # (code, version, hash) -> the id its definition names (None: not a JSON object);
    # kept across publications, so each definition is parsed once.
    _ids: dict[tuple[int, int, bytes], str | None] = field(
        default_factory=dict, init=False, repr=False
    )
    _named: _Named | None = field(default=None, init=False, repr=False)
    _keys: tuple[tuple[_Published | None, ...], frozenset[tuple[int, int]]] | None = field(
        default=None, init=False, repr=False
    )
    _copies: _FolderCopies | None = field(default=None, init=False, repr=False)
    _flights: dict[tuple[object, _Key], asyncio.Future[LicenceType]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.url is not None:
            check_url(self.url)

    def load(
        self, type_ref: str | int, version: int, *, anchor_root: bytes | None = None
    ) -> LicenceType:
        """The type `type_ref` (an id or a code) in `version`, from the catalogue if it
        holds it, else loaded and checked (steps 1-4 of the module's docstring).
        `anchor_root`, the batch root of the document naming an id: when nothing else
        knows the id's code, the anchor of that root says it (one read). Parsing again
        then checks that the definition loaded has the document's id.

        Raises:
            TypeUnavailable: not published, or no copy can be read.
            DefinitionMismatch: a copy whose hash is not the recorded one.
            CouldNotCheck: the chain could not be read.
        """
        held = self._held(type_ref, version)
        if held is not None:
            return held
        _check_length(type_ref, version)
        key = (type_ref, version, anchor_root)
        stamp = self._stamp()
        refused = self._refusal(key, stamp)
        if refused is not None:
            raise refused
        from ledger.errors import LedgerError

        try:
            return self._load(key, stamp)
        except LedgerError as exc:
            # An unreachable chain, or a node whose event does not hash to its own
            # record: no verdict either way (and nothing remembered).
            raise CouldNotCheck(
                f"could not load licence type {type_ref} version {version}: {exc}"
            ) from exc

    async def load_async(
        self, type_ref: str | int, version: int, *, anchor_root: bytes | None = None
    ) -> LicenceType:
        """`load` for an event loop: a held version, a remembered miss, or a miss that
        what this loader has already read shows (an id no definition names, a version
        nobody published) is answered on the loop; anything else is loaded in a thread of
        the default executor, one per (type, version) at a time (callers asking meanwhile
        share its answer)."""
        held = self._held(type_ref, version)
        if held is not None:
            return held
        _check_length(type_ref, version)
        key: _Key = (type_ref, version, anchor_root)
        stamp = self._stamp()
        refused = self._refusal(key, stamp) or self._plain_miss(key, stamp)
        if refused is not None:
            raise refused
        flight_key = (asyncio.get_running_loop(), key)
        flight = self._flights.get(flight_key)
        if flight is None:
            flight = asyncio.ensure_future(
                asyncio.to_thread(self.load, type_ref, version, anchor_root=anchor_root)
            )
            self._flights[flight_key] = flight
            flight.add_done_callback(partial(self._landed, flight_key))
        # Shielded: one caller going away must not cancel the others' load.
        return await asyncio.shield(flight)

    def remembered(
        self, type_ref: str | int, version: int, *, anchor_root: bytes | None = None
    ) -> TypeUnavailable | None:
        """The refusal this loader remembers for that version, if nothing that could
        change it has changed since (a new publication, folder file or held type)."""
        if (type_ref, version, anchor_root) not in self._misses:
            return None  # not even a stamp to take
        return self._refusal((type_ref, version, anchor_root), self._stamp())

    @property
    def misses_remembered(self) -> int:
        """How many (type, version) pairs this loader remembers it could not load."""
        return len(self._misses)

    def _landed(self, flight_key: tuple[object, _Key], done: asyncio.Future[LicenceType]) -> None:
        self._flights.pop(flight_key, None)
        if not done.cancelled():
            done.exception()  # retrieved here: every caller may have gone away

    def _plain_miss(self, key: _Key, stamp: _Stamp) -> TypeUnavailable | None:
        """The refusal (then remembered) of a version that the published versions and
        folder files as last read show cannot be loaded; None when knowing takes a read."""
        if not stamp.complete:
            return None
        type_ref, version, anchor_root = key
        try:
            code = self._code_of(type_ref, version, anchor_root, stamp, reading=False)
        except TypeUnavailable as exc:
            self._remember(key, stamp, exc)
            return exc
        if code is None or (code, version) in self._published_keys(stamp):
            return None
        refused = self._unpublished(type_ref, code, version)
        self._remember(key, stamp, refused)
        return refused

    def _refusal(self, key: _Key, stamp: _Stamp) -> TypeUnavailable | None:
        found = self._misses.get(key)
        if found is None or found[0] != self._generations.of(stamp.base):
            return None
        if found[1] is not None and found[1] != self._folder_generations.of(stamp.folder):
            return None
        return found[2]()

    def _remember(self, key: _Key, stamp: _Stamp, refused: TypeUnavailable) -> None:
        if not stamp.complete:
            return
        again = _again(refused)
        number = self._generations.of(stamp.base)
        seen = stamp.folder_seen
        folder = None if seen is None else self._folder_generations.of(seen)
        with self._lock:
            self._misses.pop(key, None)  # the newest last: the oldest is forgotten first
            self._misses[key] = (number, folder, again)
            while len(self._misses) > self.keep_misses:
                del self._misses[next(iter(self._misses))]

    def _stamp(self) -> _Stamp:
        return _Stamp(
            len(self.into),
            tuple(_published(records) for records in self.records),
            self.folder,
        )

    def _load(self, key: _Key, stamp: _Stamp) -> LicenceType:
        type_ref, version, anchor_root = key
        remember = True
        try:
            code = self._code_of(type_ref, version, anchor_root, stamp)
            assert code is not None  # reading, it finds a code or raises
            if self.folder is None and self.url is None:
                if stamp.complete and (code, version) not in self._published_keys(stamp):
                    raise self._unpublished(type_ref, code, version)
                # The event is the registry's own record: its bytes hash to the hash the
                # registry stored (the ledger checks), so one read gives both.
                for records in self.records:
                    definition = records.licence_type_definition(code, version)
                    if definition is not None:
                        source = f"the registry's event for code {code} version {version}"
                        recorded = hashlib.sha256(definition).digest()
                        return self._checked(source, definition, code, version, recorded)
                raise self._unpublished(type_ref, code, version)
            published = self._first(lambda r: r.licence_type(code, version))
            if published is None:
                raise self._unpublished(type_ref, code, version)
            # A server may answer (or answer right) on the next request.
            remember = self.folder is not None
            source, text = self._copy(type_ref, code, version, stamp)
            return self._checked(source, text, code, version, published.definition_hash)
        except TypeUnavailable as exc:
            if remember:
                self._remember(key, stamp, exc)
            raise

    @staticmethod
    def _unpublished(type_ref: str | int, code: int, version: int) -> TypeUnavailable:
        return TypeUnavailable(
            type_ref,
            version,
            f"the trusted registry has not published code {code} version {version}",
        )

    def _held(self, type_ref: str | int, version: int) -> LicenceType | None:
        try:
            if isinstance(type_ref, int):
                return self.into.by_code(type_ref, version)
            return self.into.get(type_ref, version)
        except UnknownLicenceType:
            return None

    def _code_of(
        self,
        type_ref: str | int,
        version: int,
        anchor_root: bytes | None,
        stamp: _Stamp,
        *,
        reading: bool = True,
    ) -> int | None:
        """The code of `type_ref`; TypeUnavailable if nothing names that id. Not
        `reading`: without parsing a definition, reading a folder or an anchor (None when
        that would be needed)."""
        if isinstance(type_ref, int):
            return type_ref
        try:
            return self.into.get(type_ref).code
        except UnknownLicenceType:
            pass
        # A type none of whose versions is held: a folder, or a local record of every
        # publication (the index, a trust snapshot), can say its code; the chain could
        # only by reading every definition the registry holds.
        named = self._names(stamp) if reading else self._named_as_of(stamp)
        if named is None:
            return None
        for found_code in named.codes.get((type_ref, version), ()):
            if not _knows_code(self.into, found_code):
                return found_code
        if self.folder is not None:
            copies = self._folder_copies(stamp) if reading else self._copies_as_of(stamp)
            if copies is None:
                return None
            code = copies.codes.get((type_ref, version))
            if isinstance(code, int):
                return code
        if anchor_root is not None:
            if not reading:
                return None
            anchored = self._first(lambda r: _anchor_of(r, anchor_root))
            if anchored is not None and anchored.type_version == version:
                return anchored.licence_type
        raise TypeUnavailable(
            type_ref,
            version,
            "this verifier knows no licence type of that id (a QR "
            "payload names the type's code; or give a catalogue folder holding it)",
        )

    def _names(self, stamp: _Stamp) -> _Named:
        """The ids of the versions the records list as published, as of `stamp`: each
        definition parsed once, when first listed."""
        named = self._named_as_of(stamp)
        if named is not None:
            return named
        with self._lock:
            named = self._named_as_of(stamp)  # another thread's, built meanwhile
            if named is not None:
                return named
            codes: dict[tuple[str, int], list[int]] = {}
            for records, listed in zip(self.records, stamp.published, strict=True):
                for code, version, digest in listed or ():
                    # A known code's id is the catalogue's (as when parsing licences).
                    if _knows_code(self.into, code):
                        continue
                    if (code, version, digest) not in self._ids:
                        definition = records.licence_type_definition(code, version)
                        self._ids[code, version, digest] = _id_in(definition)
                    type_id = self._ids[code, version, digest]
                    if type_id is not None:
                        codes.setdefault((type_id, version), []).append(code)
            found_codes = {key: tuple(found) for key, found in codes.items()}
            named = _Named(stamp.published, stamp.held, found_codes)
            self._named = named
        return named

    def _named_as_of(self, stamp: _Stamp) -> _Named | None:
        named = self._named
        if named is None or (named.published, named.held) != (stamp.published, stamp.held):
            return None
        return named

    def _copies_as_of(self, stamp: _Stamp) -> _FolderCopies | None:
        copies = self._copies
        return copies if copies is not None and copies.stamp == stamp.folder else None

    def _published_keys(self, stamp: _Stamp) -> frozenset[tuple[int, int]]:
        """The (code, version) pairs the records list as published, as of `stamp`."""
        kept = self._keys
        if kept is None or kept[0] != stamp.published:
            listed = (key for one in stamp.published for key in one or ())
            kept = self._keys = (stamp.published, frozenset((c, v) for c, v, _ in listed))
        return kept[1]

    def _folder_copies(self, stamp: _Stamp) -> _FolderCopies:
        """The folder's definitions as of `stamp` (read again when a file is added,
        removed or changed)."""
        assert self.folder is not None
        copies = self._copies_as_of(stamp)
        if copies is not None:
            return copies
        with self._lock:
            copies = self._copies_as_of(stamp) or _read_folder(self.folder, stamp.folder)
            self._copies = copies
        return copies

    def _first(self, read: Callable[[TypeRecords], T | None]) -> T | None:
        for records in self.records:
            found = read(records)
            if found is not None:
                return found
        return None

    def _copy(
        self, type_ref: str | int, code: int, version: int, stamp: _Stamp
    ) -> tuple[str, bytes]:
        """(where from, the definition's bytes)."""
        if self.folder is not None:
            found = self._folder_copies(stamp).copies.get((code, version))
            if found is None:
                raise TypeUnavailable(
                    type_ref,
                    version,
                    f"the catalogue folder {self.folder} holds no definition "
                    f"of code {code} version {version}",
                )
            path, text = found
            return str(path), text
        if self.url is not None:
            address = self.url.format(code=code, version=version, id=type_ref)
            try:
                return address, self.read(address)
            except (OSError, ValueError) as exc:
                raise TypeUnavailable(type_ref, version, f"cannot read {address}: {exc}") from exc
        raise TypeUnavailable(type_ref, version, "no catalogue folder or URL")

    def _checked(
        self, source: str, text: bytes, code: int, version: int, recorded: bytes
    ) -> LicenceType:
        from licence.catalogue_rules import parse_definition_text

        try:
            loaded = parse_definition_text(text.decode("utf-8"), source)
        except (UnicodeDecodeError, CatalogueError) as exc:
            raise TypeUnavailable(
                code, version, f"{source} is not a valid definition: {exc}"
            ) from exc
        if loaded.definition_hash != recorded:
            raise DefinitionMismatch(source, code, version, recorded, loaded.definition_hash)
        if (loaded.code, loaded.version) != (code, version):
            # Only a governor's mistake can get here (the hash is the registry's own).
            raise TypeUnavailable(
                code, version, f"{source} defines code {loaded.code} version {loaded.version}"
            )
        try:
            self.into.add(loaded)
        except CatalogueError as exc:
            raise TypeUnavailable(
                code, version, f"it conflicts with this catalogue: {exc}"
            ) from exc
        return loaded


def _check_length(type_ref: str | int, version: int) -> None:
    if isinstance(type_ref, str) and len(type_ref) > MAX_TYPE_ID_LENGTH:
        raise TypeUnavailable(
            type_ref[:MAX_TYPE_ID_LENGTH] + "...",
            version,
            f"no licence type id is longer than {MAX_TYPE_ID_LENGTH} characters",
        )


def _again(refused: TypeUnavailable) -> Callable[[], TypeUnavailable]:
    """A maker of `refused` anew (a remembered refusal is raised as a new exception, not
    the first one with its traceback, from whichever thread asks)."""
    if isinstance(refused, DefinitionMismatch):
        return partial(
            DefinitionMismatch,
            refused.source,
            int(refused.type_ref),
            refused.version,
            refused.recorded,
            refused.found,
        )
    return partial(TypeUnavailable, refused.type_ref, refused.version, refused.detail)


def _published(records: TypeRecords) -> _Published | None:
    """The versions `records` lists as published (an index or a trust snapshot lists
    them from memory; a registry read on chain does not: None)."""
    listing = getattr(records, "published_types", None)
    if listing is None:
        return None
    return tuple((p.code, p.version, p.definition_hash) for p in listing())


def _id_in(definition: bytes | None) -> str | None:
    """The `id` member of a definition's JSON, or None."""
    try:
        named = json.loads(definition or b"{}").get("id")
    except (ValueError, AttributeError):
        return None
    return named if isinstance(named, str) else None


def _knows_code(held: Catalogue, code: int) -> bool:
    try:
        held.by_code(code)
    except UnknownLicenceType:
        return False
    return True


def _folder_stamp(folder: Path) -> _FolderStamp:
    """The folder's definition files (`*.json`, as `Path.glob` lists them), with their
    modification times and sizes: one listing and a stat per file, no read."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return ()
    stamp = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.name.endswith(".json"):
            continue
        try:
            status = entry.stat()  # through a symbolic link, as a read would go
        except OSError:
            continue
        stamp.append((entry.name, status.st_mtime_ns, status.st_size))
    return tuple(sorted(stamp))


def _read_folder(folder: Path, stamp: _FolderStamp) -> _FolderCopies:
    """The definitions of the files `stamp` lists, first file (by name) first; files that
    are not JSON objects are passed over (a definition's `version` absent means 1)."""
    codes: dict[tuple[Any, Any], Any] = {}
    copies: dict[tuple[Any, Any], tuple[Path, bytes]] = {}
    for name, _, _ in stamp:
        path = folder / name
        try:
            text = path.read_bytes()
            raw = json.loads(text)
        except (OSError, ValueError):
            continue
        if not isinstance(raw, dict):
            continue
        version = raw.get("version", 1)
        try:
            codes.setdefault((raw.get("id"), version), raw.get("code"))
            copies.setdefault((raw.get("code"), version), (path, text))
        except TypeError:  # a list or an object where a name or a number belongs
            continue
    return _FolderCopies(stamp, codes, copies)


D = TypeVar("D")


def parse_loading(parse: Callable[[], D], loader: Callable[[], TypeLoader]) -> D:
    """`parse()` (a document, payload or image read into a LicenceDocument); when it
    names a type version the catalogue lacks, that version is loaded by the TypeLoader
    `loader()` makes (called only then: a verifier connects to nothing for types it
    holds) and `parse()` is run again.

    Raises:
        TypeUnavailable: the version cannot be loaded (could not check, never TAMPERED).
        CouldNotCheck: the chain could not be read.
    """
    try:
        return parse()
    except UnknownTypeVersion as exc:
        missing = exc
    loader().load(missing.type_ref, missing.version, anchor_root=missing.anchor_root)
    try:
        return parse()
    except UnknownTypeVersion as exc:
        # The loaded version is in the catalogue; only a document naming its type both
        # by an id and a code that disagree can miss it again.
        raise TypeUnavailable(
            exc.type_ref, exc.version, "the loaded definition is not the one it names"
        ) from exc


class AnchoredType(Protocol):
    """What an anchor says of its batch's type (ledger.registry.Anchor)."""

    @property
    def licence_type(self) -> int: ...
    @property
    def type_version(self) -> int: ...


def _anchor_of(records: TypeRecords, root: bytes) -> AnchoredType | None:
    """The registry's anchor of `root` from a source that records anchors (a Registry or
    an index; a bare record of types does not), else None."""
    anchor_of = getattr(records, "anchor_of", None)
    return None if anchor_of is None else anchor_of(root)
