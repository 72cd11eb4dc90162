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
    PassphraseFdOption,
    PassphraseFileOption,
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

NEW_PASSPHRASE_VARIABLE = "ELICENCE_NEW_PASSPHRASE"
CipherOption = Annotated[
    str | None,
    typer.Option(
        "--cipher",
        help="Keystore cipher: aes (AES-128-CTR, scrypt; the default) or sm4 (SM4-GCM, "
        'Argon2id); default the home\'s config.json "keys": {"cipher": ...}.',
        show_default=False,
    ),
]

registry_app = typer.Typer(
    help="The licence registry contract (the governor's).", no_args_is_help=True
)
agency_app = typer.Typer(
    help="Issuing agencies: keys, authorisation, retirement, key rotation.", no_args_is_help=True
)


@registry_app.command("deploy")
def deploy(
    *,
    home: HomeOption = None,
    chain: ChainOption = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Deploy a new registry even though the home has one, and make the new one "
            "the home's (the old one and its licences stay on chain).",
        ),
    ] = False,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Deploy a new registry with the governor's key, publish the shipped licence types in
    it, and save its address in the home.

    Creates the governor's keystore (HOME/keys/governor.json) on first use; the
    passphrase comes from ELICENCE_PASSPHRASE, --passphrase-file, --passphrase-fd or a
    prompt. Later commands find the registry and chain in HOME/config.json. A home that
    has a registry already keeps it unless --replace is given.

    Example: [bold]elicence registry deploy --home ~/.elicence --chain http://127.0.0.1:8545[/]
    """
    from issuer.agency import deploy_registry
    from issuer.keystore import create
    from ledger.config import HomeConfig
    from licence.catalogue import catalogue

    folder = home_of(home)
    path = keystore_path(folder, GOVERNOR_KEYSTORE)
    with reported():
        saved = HomeConfig.load(folder)
    if saved.registry and not replace:
        fail(
            f"{folder} has a registry already, {saved.registry} on {saved.chain_url}; "
            "pass --replace to deploy a new one in its place",
            EXIT_UNUSABLE,
        )
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
    # Agencies can only be authorised for published types: publish the shipped ones.
    shipped = sorted(catalogue(), key=lambda t: (t.code, t.version))
    with reported():
        deployed.registry.publish_licence_types(governor, shipped)
    for licence_type in shipped:
        console.print(
            f"published licence type {licence_type.code} version {licence_type.version}: "
            f"{licence_type.name.zh} ({licence_type.id}), definition sha256 "
            f"{licence_type.definition_hash.hex()}",
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
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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
    *,
    name: Annotated[str, typer.Option(help="The agency's name, e.g. 海淀区市场监管局.")],
    code: Annotated[str, typer.Option(help="The agency's unified social credit code.")],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    cipher: CipherOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Create this agency's signing key in an encrypted keystore and print its address.

    The key is written to HOME/keys/agency.json (mode 0600), encrypted with the
    passphrase from ELICENCE_PASSPHRASE or a prompt; it is never printed. Give the
    printed command to the governor. --chain and --registry (the governor's) are saved
    in HOME/config.json for later commands. --cipher sm4 encrypts it with SM4-GCM and
    Argon2id instead of AES and scrypt (docs/agency.md, Keys).

    Example: [bold]elicence agency new --name 海淀区市场监管局
    --code 91110108551385082Q[/]
    """
    from issuer.agency import remember_chain
    from issuer.keystore import SEAL_KEYSTORE, create, create_seal_key
    from licence import credit_code

    problem = credit_code.problem_with(code)
    if problem:
        fail(f"--code {code!r} is not a valid unified social credit code: {problem}", EXIT_UNUSABLE)
    folder = home_of(home)
    path = keystore_path(folder, AGENCY_KEYSTORE)
    with reported():
        account = create(path, passphrase(confirm=True), cipher=cipher)
        seal_path = keystore_path(folder, SEAL_KEYSTORE)
        seal_public = create_seal_key(seal_path, passphrase(confirm=True), cipher=cipher)
        if chain or registry:
            remember_chain(folder, chain, registry)
    console.print(f"agency key created: [bold]{account.address}[/] ({path})", highlight=False)
    console.print(f"SM2 seal key created: 0x{seal_public.hex()} ({seal_path})", highlight=False)
    console.print("Ask the governor to run:", highlight=False)
    console.print(
        f"  elicence agency authorise --address {account.address} --code {code} "
        f"--name {shlex.quote(name)} --types business-licence",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"  elicence agency seal-key register --id <the agency id it prints> "
        f"--public-key 0x{seal_public.hex()}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


seal_key_app = typer.Typer(
    help="The agency's SM2 seal key (GB/T 32918.2): every anchored batch root is sealed.",
    no_args_is_help=True,
)
agency_app.add_typer(seal_key_app, name="seal-key")


@seal_key_app.command("new")
def seal_key_new(
    *,
    home: HomeOption = None,
    cipher: CipherOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Create this agency's SM2 seal key (HOME/keys/seal.json, encrypted, mode 0600) if
    `elicence agency new` did not (homes made before seals), and print its public key.

    Example: [bold]elicence agency seal-key new[/]
    """
    from issuer.keystore import SEAL_KEYSTORE, create_seal_key

    path = keystore_path(home_of(home), SEAL_KEYSTORE)
    with reported():
        public = create_seal_key(path, passphrase(confirm=True), cipher=cipher)
    console.print(f"SM2 seal key created: 0x{public.hex()} ({path})", highlight=False)
    console.print("Ask the governor to run:", highlight=False)
    console.print(
        f"  elicence agency seal-key register --id <agency id> --public-key 0x{public.hex()}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@seal_key_app.command("register")
def seal_key_register(
    *,
    agency_id: Annotated[int, typer.Option("--id", help="The agency's id.", min=1)],
    public_key: Annotated[
        str, typer.Option("--public-key", help="The SM2 public key X || Y (0x and 128 hex).")
    ],
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block",
            help="First block whose batches it seals (default: the next block). A later "
            "block than the agency's current seal key's makes it a rotation.",
            min=1,
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Register an agency's SM2 seal key from a block on (the governor's key).

    Example: [bold]elicence agency seal-key register --id 1 --public-key 0x09f9...ad13[/]
    """
    from licence import seal

    try:
        key = bytes.fromhex(public_key.removeprefix("0x"))
        seal.check_public_key(key)
    except (ValueError, seal.SealError) as exc:
        fail(f"--public-key is not an SM2 public key: {exc}", EXIT_UNUSABLE)
    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        bound = open_registry(folder, chain, registry)
        start = from_block if from_block is not None else bound.chain.block_number() + 1
        sent = bound.register_seal_key(governor, agency_id, key, start)
    console.print(
        f"agency {agency_id} seals with 0x{key.hex()} from block {start}; "
        f"transaction {sent.tx_hash}",
        highlight=False,
    )


@seal_key_app.command("compromised")
def seal_key_compromised(
    *,
    agency_id: Annotated[int, typer.Option("--id", help="The agency's id.", min=1)],
    key_number: Annotated[
        int | None,
        typer.Option(
            "--key",
            help="Which of its seal keys leaked, by number (default: the one valid now).",
            min=1,
            show_default=False,
        ),
    ] = None,
    from_block: Annotated[
        int,
        typer.Option(
            help="The first block whose batches' seals by that key must not count.", min=1
        ),
    ],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Report an agency's SM2 seal key compromised from a block on (the governor's key).

    Batches anchored from that block on whose seal is by that key verify as
    ISSUER_NOT_AUTHORISED (seal.key-compromised); earlier ones keep their seals. The
    agency issues nothing sealed with it any more: register a new seal key next
    (`elicence agency seal-key register --id N --public-key 0x...`).

    Example: [bold]elicence agency seal-key compromised --id 1 --from-block 1200[/]
    """
    folder = home_of(home)
    governor = open_key(folder, GOVERNOR_KEYSTORE, "governor")
    with reported():
        bound = open_registry(folder, chain, registry)
        number = key_number
        if number is None:
            current = bound.seal_key_at(agency_id, bound.chain.block_number())
            if current is None:
                fail(
                    f"agency {agency_id} has no seal key valid now: name one with --key",
                    EXIT_UNUSABLE,
                )
            number = current.number
        sent = bound.mark_seal_key_compromised(governor, agency_id, number, from_block)
    console.print(
        f"seal key {number} of agency {agency_id} reported compromised from block "
        f"{from_block}: seals by it of batches anchored from then on no longer count; "
        f"transaction {sent.tx_hash}",
        highlight=False,
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
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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
    *,
    agency_id: Annotated[int, typer.Option("--id", help="The agency's id.", min=1)],
    home: HomeOption = None,
    chain: ChainOption = None,
    registry: RegistryOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
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


@agency_app.command("rekey")
def rekey_command(
    *,
    key: Annotated[
        str, typer.Option(help="Which keystore of the home: agency or governor.")
    ] = "agency",
    cipher: CipherOption = None,
    new_passphrase_fd: Annotated[
        int | None,
        typer.Option(
            "--new-passphrase-fd",
            metavar="N",
            help="Read the new passphrase from this open file descriptor (its first line).",
            show_default=False,
        ),
    ] = None,
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--new-passphrase-file",
            metavar="PATH",
            help="Read the new passphrase from this file (its first line; chmod 600).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    home: HomeOption = None,
    passphrase_fd: PassphraseFdOption = None,
    passphrase_file: PassphraseFileOption = None,
) -> None:
    """Re-encrypt a keystore in place: a new passphrase, or another cipher (--cipher).

    The key stays the same (the registry needs no change). The current passphrase comes
    as for every command (--passphrase-fd, --passphrase-file, ELICENCE_PASSPHRASE, a
    prompt); the new one from --new-passphrase-fd, --new-passphrase-file,
    ELICENCE_NEW_PASSPHRASE or a prompt (asked twice). Without --cipher the keystore
    keeps its cipher. The old file stays whole until the new one is complete.

    Example: [bold]elicence agency rekey --cipher sm4[/]
    """
    from issuer.keystore import cipher_of, rekey

    names = {"agency": AGENCY_KEYSTORE, "governor": GOVERNOR_KEYSTORE}
    if key not in names:
        fail(f"--key {key!r}: choose agency or governor", EXIT_UNUSABLE)
    folder = home_of(home)
    path = keystore_path(folder, names[key])
    open_key(folder, names[key], key)  # the usual messages for a missing key or passphrase
    old = passphrase(confirm=False)
    new = _new_passphrase(new_passphrase_fd, new_passphrase_file)
    with reported():
        account = rekey(path, old, new, cipher=cipher)
        now = cipher_of(path)
    console.print(f"{key} key {account.address} re-encrypted ({now}) in {path}", highlight=False)


def _new_passphrase(fd: int | None, file: Path | None) -> str:
    """The new passphrase of `agency rekey`, by the rules of cli.support.passphrase."""
    import os

    from cli.support import _can_prompt, _first_line, _read_private

    if fd is not None:
        try:
            with open(fd, "rb", closefd=False) as stream:
                return _first_line(stream.readline(), f"--new-passphrase-fd {fd}")
        except OSError as exc:
            fail(f"--new-passphrase-fd {fd}: cannot read it ({exc.strerror})", EXIT_UNUSABLE)
    if file is not None:
        return _first_line(_read_private(file), f"--new-passphrase-file {file}")
    given = os.environ.get(NEW_PASSPHRASE_VARIABLE)
    if given:
        return given
    if not _can_prompt():
        fail(
            "no new passphrase and no terminal to ask for one: set "
            f"{NEW_PASSPHRASE_VARIABLE}, or pass --new-passphrase-file PATH or "
            "--new-passphrase-fd N",
            EXIT_UNUSABLE,
        )
    answer: str = typer.prompt(
        "New keystore passphrase", hide_input=True, confirmation_prompt=True, err=True
    )
    return answer


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
