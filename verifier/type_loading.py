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
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from licence.catalogue import Catalogue, LicenceType, catalogue
from licence.errors import CatalogueError, UnknownLicenceType, UnknownTypeVersion
from verifier.errors import CouldNotCheck, DefinitionMismatch, TypeUnavailable

# A definition on chain is at most 16,384 bytes of canonical JSON; a copy may be indented.
MAX_DEFINITION_BYTES = 256 * 1024
URL_TIMEOUT_S = 5.0

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


@dataclass
class TypeLoader:
    """Loads type versions from `records` (in order: the index before the chain), with
    the definitions from `folder` or `url` when given, into `into` (the process's
    catalogue unless told otherwise)."""

    records: Sequence[TypeRecords]
    folder: Path | None = None
    url: str | None = None
    into: Catalogue = field(default_factory=catalogue)
    read: Callable[[str], bytes] = read_url

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
        from ledger.errors import LedgerError

        try:
            return self._load(type_ref, version, anchor_root)
        except LedgerError as exc:
            # An unreachable chain, or a node whose event does not hash to its own
            # record: no verdict either way.
            raise CouldNotCheck(
                f"could not load licence type {type_ref} version {version}: {exc}"
            ) from exc

    def _load(self, type_ref: str | int, version: int, anchor_root: bytes | None) -> LicenceType:
        code = self._code_of(type_ref, version, anchor_root)
        if self.folder is None and self.url is None:
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
        source, text = self._copy(type_ref, code, version)
        return self._checked(source, text, code, version, published.definition_hash)

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

    def _code_of(self, type_ref: str | int, version: int, anchor_root: bytes | None) -> int:
        if isinstance(type_ref, int):
            return type_ref
        try:
            return self.into.get(type_ref).code
        except UnknownLicenceType:
            pass
        # A type none of whose versions is held: a folder, or a local record of every
        # publication (the index, a trust snapshot), can say its code; the chain could
        # only by reading every definition the registry holds.
        for records in self.records:
            found_code = _published_code(records, type_ref, version, self.into)
            if found_code is not None:
                return found_code
        if self.folder is not None:
            found = _folder_file(self.folder, lambda raw: raw.get("id") == type_ref, version)
            if found is not None:
                code = json.loads(found.read_bytes()).get("code")
                if isinstance(code, int):
                    return code
        if anchor_root is not None:
            anchored = self._first(lambda r: _anchor_of(r, anchor_root))
            if anchored is not None and anchored.type_version == version:
                return anchored.licence_type
        raise TypeUnavailable(
            type_ref,
            version,
            "this verifier knows no licence type of that id (a QR "
            "payload names the type's code; or give a catalogue folder holding it)",
        )

    def _first(self, read: Callable[[TypeRecords], T | None]) -> T | None:
        for records in self.records:
            found = read(records)
            if found is not None:
                return found
        return None

    def _copy(self, type_ref: str | int, code: int, version: int) -> tuple[str, bytes]:
        """(where from, the definition's bytes)."""
        if self.folder is not None:
            path = _folder_file(self.folder, lambda raw: raw.get("code") == code, version)
            if path is None:
                raise TypeUnavailable(
                    type_ref,
                    version,
                    f"the catalogue folder {self.folder} holds no definition "
                    f"of code {code} version {version}",
                )
            try:
                return str(path), path.read_bytes()
            except OSError as exc:
                raise TypeUnavailable(type_ref, version, f"cannot read {path}: {exc}") from exc
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


def _published_code(
    records: TypeRecords, type_id: str, version: int, held: Catalogue
) -> int | None:
    """The code under which `records` (when it lists publications: an index or a trust
    snapshot, read without the chain) published `version` of a type called `type_id`
    whose code `held` does not know; None if there is none."""
    listing = getattr(records, "published_types", None)
    if listing is None:
        return None
    for published in listing():
        if published.version != version or _knows_code(held, published.code):
            continue
        definition = records.licence_type_definition(published.code, version)
        try:
            named = json.loads(definition or b"{}").get("id")
        except (ValueError, AttributeError):
            continue
        if named == type_id:
            return int(published.code)
    return None


def _knows_code(held: Catalogue, code: int) -> bool:
    try:
        held.by_code(code)
    except UnknownLicenceType:
        return False
    return True


def _folder_file(
    folder: Path, matches: Callable[[dict[str, object]], bool], version: int
) -> Path | None:
    """The definition file in `folder` that `matches` with this version (its `version`
    member, absent meaning 1), or None; files that are not JSON objects are passed over."""
    for path in sorted(folder.glob("*.json")):
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict) and matches(raw) and raw.get("version", 1) == version:
            return path
    return None


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
