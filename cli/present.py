"""`elicence present`: the holder's selective disclosure, over licence.presentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cli.support import EXIT_UNUSABLE, console, errors, fail, read_input

if TYPE_CHECKING:
    from licence.document import LicenceDocument

_QR_KINDS = {".png": "png", ".svg": "svg"}


def _fail(message: str) -> NoReturn:
    fail(message, EXIT_UNUSABLE)


def present_command(
    file: Annotated[
        str,
        typer.Argument(
            help="Licence or presentation: JSON, an EL2:/EL1: payload, a PNG/JPEG QR image, "
            "or - for standard input."
        ),
    ],
    disclose: Annotated[
        list[str] | None,
        typer.Option(
            help="Fields to disclose, comma-separated (repeatable). The fields the "
            "catalogue marks for mandatory disclosure (licence number, holder, credit "
            "code, validity, authority, ...) are always disclosed; every other field is "
            "hidden behind its salted commitment.",
        ),
    ] = None,
    qr: Annotated[
        Path | None,
        typer.Option(help="Write the QR code to this file: .png or .svg.", dir_okay=False),
    ] = None,
    text: Annotated[bool, typer.Option("--text", help="Print the EL2: payload.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the presentation as JSON to this file.", dir_okay=False),
    ] = None,
) -> None:
    """Make a presentation that shows only the fields a matter needs (可用不可见).

    Without --qr, --text or --out the presentation's JSON goes to standard output.
    A presentation made from a presentation can only hide more, never reveal.

    Example: [bold]elicence present licence.json --disclose registeredAddress --qr licence.png[/]
    """
    from issuer.files import write_atomically
    from issuer.qr import qr_png, qr_svg
    from licence.errors import LicenceFormatError
    from licence.payload import encode_payload
    from licence.presentation import present

    kind = _QR_KINDS.get(qr.suffix.lower()) if qr is not None else None
    if qr is not None and kind is None:
        _fail(f"--qr {qr}: the file name must end in .png or .svg")
    names = [n.strip() for item in disclose or [] for n in item.split(",") if n.strip()]
    data = read_input(file)
    try:
        presentation = present(_read_licence(data), names)
        payload = encode_payload(presentation) if qr is not None or text else ""
    except LicenceFormatError as exc:
        _fail(f"{file}: {exc}")
    document_json = json.dumps(presentation.to_json(), ensure_ascii=False, indent=2)
    try:
        if qr is not None:
            (qr_png if kind == "png" else qr_svg)(payload, qr)
        if out is not None:
            write_atomically(out, (document_json + "\n").encode("utf-8"))
    except OSError as exc:
        _fail(f"cannot write {exc.filename}: {exc.strerror}")
    to_stdout = text or (qr is None and out is None)
    # The summary goes to standard error when standard output carries the presentation,
    # so that `--text` can be piped into another program.
    summary = errors if to_stdout else console
    hidden = ", ".join(presentation.hidden) or "none"
    summary.print(f"disclosed: {', '.join(presentation.fields)}", highlight=False)
    summary.print(f"hidden: {hidden}", highlight=False)
    if qr is not None:
        summary.print(f"QR code written to {qr}", highlight=False)
    if text:
        print(payload)
    elif to_stdout:
        print(document_json)


def _read_licence(data: bytes) -> LicenceDocument:
    """The licence in `data`; an EL2: payload names no chain or registry, so it is read
    with the home's (ELICENCE_REGISTRY, ELICENCE_CHAIN_ID or config.json)."""
    from ledger.config import ConfigError, HomeConfig, default_home
    from licence.errors import PayloadError
    from verifier.images import load_any

    try:
        return load_any(data)
    except PayloadError as exc:
        if exc.reason != "deployment":
            raise
    try:
        config = HomeConfig.read(default_home(), None, None)
    except ConfigError as exc:
        _fail(str(exc))
    if config.registry is None or config.chain_id is None:
        _fail(
            "an EL2: payload names no chain or registry: present the licence's JSON file, "
            "or set ELICENCE_REGISTRY and ELICENCE_CHAIN_ID (or the home's config.json)"
        )
    return load_any(data, chain_id=config.chain_id, registry=config.registry)
