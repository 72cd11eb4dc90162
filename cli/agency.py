"""`elicence registry ...` and `elicence agency ...`: the governor's and the agency's
governance commands, over issuer.agency and ledger.registry."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from cli.support import (
    EXIT_UNUSABLE,
    ChainOption,
    HomeOption,
    RegistryOption,
    console,
    fail,
    home_of,
    licence_type_codes,
    open_key,
    open_registry,
    parse_reason,
    passphrase,
    reported,
    type_name,
)
from issuer.keystore import AGENCY_KEYSTORE, GOVERNOR_KEYSTORE, keystore_path

registry_app = typer.Typer(
    help="The licence registry contract (the governor's).", no_args_is_help=True
)
agency_app = typer.Typer(
    help="Issuing agencies: keys, authorisation, retirement, key rotation.", no_args_is_help=True
)


@registry_app.command("deploy")
def deploy(home: HomeOption = None, chain: ChainOption = None) -> None:
    """Deploy a new registry with the governor's key and save its address in the home.

    Creates the governor's keystore (HOME/keys/governor.json) on first use; the
    passphrase comes from ELICENCE_PASSPHRASE or a prompt. Later commands find the
    registry and chain in HOME/config.json.

    Example: [bold]elicence registry deploy --home ~/.elicence --chain http://127.0.0.1:8545[/]
    """
    from issuer.agency import deploy_registry
    from issuer.keystore import create

    folder = home_of(home)
    path = keystore_path(folder, GOVERNOR_KEYSTORE)
    with reported():
        if path.exists():
            governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
        else:
            governor = create(path, passphrase(confirm=True))
            console.print(f"governor key created: {governor.address} ({path})", highlight=False)
        deployed = deploy_registry(folder, governor, chain)
    console.print(
        f"registry deployed at [bold]{deployed.registry.address}[/] on chain "
        f"{deployed.chain_id} ({deployed.chain_url}); saved in {folder / 'config.json'}",
        highlight=False,
    )


@registry_app.command("revoke-batch")
def revoke_batch(
    root: Annotated[str, typer.Argument(help="The batch root: 0x and 32 hex digits.")],
    *,
    reason: Annotated[
        str, typer.Option(help="Reason code: a name such as ISSUED_IN_ERROR, or its number.")
    ],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Revoke a whole anchored batch (the governor's key): every licence in it verifies as
    REVOKED, unless its own status is final already.

    The batch is the unit: licences of the batch anchored again in another batch are not
    covered; revoke those one by one (`elicence revoke`) to make it final for them.

    Example: [bold]elicence registry revoke-batch 0x1756e75d9d8ebbd1f9531eb15b85f502
    --reason ISSUED_IN_ERROR[/]
    """
    digest = _root(root)
    code = parse_reason(reason)
    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        sent = open_registry(folder, chain, registry).revoke_batch(governor, digest, code)
    console.print(
        f"batch {root.lower()} revoked ({code.name}); transaction {sent.tx_hash}",
        highlight=False,
    )


def _root(text: str) -> bytes:
    value = text.strip().lower()
    digits = value[2:] if value.startswith("0x") else value
    try:
        digest = bytes.fromhex(digits)
    except ValueError:
        digest = b""
    if len(digest) != 16:
        fail(
            f"{text!r} is not a batch root: give a 16-byte hash as 0x and 32 hex digits",
            EXIT_UNUSABLE,
        )
    return digest


@agency_app.command("new")
def new(
    name: Annotated[str, typer.Option(help="The agency's name, e.g. 北京市海淀区市场监督管理局.")],
    code: Annotated[str, typer.Option(help="The agency's unified social credit code.")],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Create this agency's signing key in an encrypted keystore and print its address.

    The key is written to HOME/keys/agency.json (mode 0600), encrypted with the
    passphrase from ELICENCE_PASSPHRASE or a prompt; it is never printed. Give the
    printed command to the governor. --chain and --registry (the governor's) are saved
    in HOME/config.json for later commands.

    Example: [bold]elicence agency new --name 海淀区市场监管局 --code 91110108551385082Q[/]
    """
    from issuer.agency import remember_chain
    from issuer.keystore import create
    from licence import credit_code

    problem = credit_code.problem_with(code)
    if problem:
        fail(f"--code {code!r} is not a valid unified social credit code: {problem}", EXIT_UNUSABLE)
    folder = home_of(home)
    path = keystore_path(folder, AGENCY_KEYSTORE)
    with reported():
        account = create(path, passphrase(confirm=True))
        if chain or registry:
            remember_chain(folder, chain, registry)
    console.print(f"agency key created: [bold]{account.address}[/] ({path})", highlight=False)
    console.print("Ask the governor to run:", highlight=False)
    console.print(
        f"  elicence agency authorise --address {account.address} --code {code} "
        f"--name {shlex.quote(name)} --types business-licence",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@agency_app.command("authorise")
def authorise(
    *,
    address: Annotated[str, typer.Option(help="The agency's signing address (0x...).")],
    code: Annotated[str, typer.Option(help="The agency's unified social credit code.")],
    name: Annotated[str, typer.Option(help="The agency's name.")],
    types: Annotated[
        str, typer.Option(help="Licence types it may issue: catalogue ids, comma-separated.")
    ],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Register an agency and the licence types it may issue (the governor's key).

    Example: [bold]elicence agency authorise --address 0x5B38Da6a701c568545dCfcB03FcB875f56beddC4
    --code 91110108551385082Q --name 海淀区市场监管局 --types business-licence[/]
    """
    folder = home_of(home)
    codes = _types(types)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        bound = open_registry(folder, chain, registry)
        agency_id, sent = bound.register_agency(governor, code, name, address, codes)
    console.print(
        f"agency [bold]{agency_id}[/] ({name}) authorised for "
        f"{', '.join(type_name(c) for c in codes)}; transaction {sent.tx_hash}",
        highlight=False,
    )


@agency_app.command("types")
def set_types(
    *,
    agency_id: Annotated[int, typer.Option("--id", help="The agency's id.", min=1)],
    types: Annotated[
        str, typer.Option(help="All the licence types it may issue from now on, comma-separated.")
    ],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Replace the licence types an agency may issue (the governor's key).

    Batches anchored before keep their validity.

    Example: [bold]elicence agency types --id 1 --types business-licence,food-business-licence[/]
    """
    folder = home_of(home)
    codes = _types(types)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        sent = open_registry(folder, chain, registry).set_agency_types(governor, agency_id, codes)
    console.print(
        f"agency {agency_id} may now issue {', '.join(type_name(c) for c in codes)}; "
        f"transaction {sent.tx_hash}",
        highlight=False,
    )


@agency_app.command("retire")
def retire(
    agency_id: Annotated[int, typer.Option("--id", help="The agency's id.", min=1)],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Retire an agency for good (the governor's key); what it issued stays valid.

    Example: [bold]elicence agency retire --id 3[/]
    """
    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        sent = open_registry(folder, chain, registry).retire_agency(governor, agency_id)
    console.print(f"agency {agency_id} retired; transaction {sent.tx_hash}", highlight=False)


@agency_app.command("rotate")
def rotate(
    *,
    agency_id: Annotated[
        int | None, typer.Option("--id", help="The agency's id (governor rotation).", min=1)
    ] = None,
    new_address: Annotated[
        str | None, typer.Option(help="The new signing address (governor rotation).")
    ] = None,
    new_key: Annotated[
        bool,
        typer.Option("--new-key", help="Agency rotation: make a new key here and switch to it."),
    ] = False,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Replace an agency's signing key; licences it anchored before stay valid.

    The governor: `--id N --new-address 0x...`. The agency itself: `--new-key`, which
    creates a new keystore, signs the rotation with the current key and switches this
    home to the new key (the old keystore is kept as agency-retired-<address>.json).

    Example: [bold]elicence agency rotate --new-key[/]
    """
    folder = home_of(home)
    if new_key == (agency_id is not None or new_address is not None):
        fail("give either --new-key, or --id and --new-address", EXIT_UNUSABLE)
    if not new_key:
        if agency_id is None or new_address is None:
            fail("a governor rotation needs both --id and --new-address", EXIT_UNUSABLE)
        governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
        with reported():
            bound = open_registry(folder, chain, registry)
            sent = bound.rotate_signer(governor, agency_id, new_address)
        console.print(
            f"agency {agency_id} now signs with {new_address}; transaction {sent.tx_hash}",
            highlight=False,
        )
        return
    _rotate_own_key(folder, chain, registry)


@agency_app.command("compromised")
def compromised(
    *,
    agency_id: Annotated[
        int | None, typer.Option("--id", help="The agency whose current key leaked.", min=1)
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Or the leaked key's address (e.g. a rotated-away key).")
    ] = None,
    from_block: Annotated[
        int, typer.Option(help="The first block whose anchors by that key must not count.", min=0)
    ],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
) -> None:
    """Report an agency key compromised from a block on (the governor's key).

    Batches the key anchored from that block on verify as ISSUER_NOT_AUTHORISED; earlier
    ones stay valid. The key is spent at once: it can neither anchor, change a status nor
    rotate itself away. Give the agency a new key next (`elicence agency rotate --id N
    --new-address 0x...`), then re-anchor the genuine licences of the affected batches.

    Example: [bold]elicence agency compromised --id 1 --from-block 1200[/]
    """
    if (agency_id is None) == (address is None):
        fail("give either --id (the agency's current key) or --address", EXIT_UNUSABLE)
    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        bound = open_registry(folder, chain, registry)
        signer = address if address is not None else bound.agency(agency_id or 0).signer
        sent = bound.mark_signer_compromised(governor, signer, from_block)
    console.print(
        f"key {signer} reported compromised from block {from_block}: its anchors from then "
        f"on no longer count, and it is spent; transaction {sent.tx_hash}",
        highlight=False,
    )


def _rotate_own_key(folder: Path, chain: str | None, registry: str | None) -> None:
    from issuer.agency import rotate_own_key

    old = open_key(folder, AGENCY_KEYSTORE, "agency")
    with reported():
        bound = open_registry(folder, chain, registry)
        rotation = rotate_own_key(folder, bound, old, lambda: passphrase(confirm=False))
    if rotation.tx_hash is not None:
        console.print(f"rotation sent: transaction {rotation.tx_hash}", highlight=False)
    console.print(
        f"agency {rotation.agency_id} now signs with [bold]{rotation.new_address}[/]; the old "
        f"key is kept in {rotation.retired}",
        highlight=False,
    )


def _types(text: str) -> list[int]:
    with reported():
        return licence_type_codes(text)
    raise AssertionError("unreachable")  # reported() exits on error
