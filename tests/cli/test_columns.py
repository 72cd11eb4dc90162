"""Output at 80 columns and through a pipe: tables never cut a value a user types or
copies (field names, Chinese labels, licence numbers, ids, roots, transactions), and help
text is wrapped to the terminal with no `<bool>` beside flags.

The terminal cases run the real `elicence` on a pseudo-terminal 80 columns wide."""

from __future__ import annotations

import fcntl
import itertools
import os
import pty
import re
import struct
import subprocess
import termios

import pytest
from rich.cells import cell_len
from typer.main import get_command
from typer.testing import CliRunner

from cli.app import app
from issuer.records import PlannedLicences, Records
from licence.reasons import Reason
from tests.cli.test_cli import _command_paths
from tests.conftest import ELICENCE, run_elicence

WIDTH = 80
NUMBERS = ["440106000000000001", "440106000000000002"]
IDS = [bytes([i]) * 16 for i in (0xA1, 0xB2)]
ROOT = bytes.fromhex("5c" * 16)
ANCHOR_TX = "0x" + "7e" * 32
STATUS_TX = "0x" + "d4" * 32


def in_terminal(*args: str, columns: int = WIDTH) -> str:
    """What `elicence ARGS` shows on a terminal `columns` wide."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    process = subprocess.Popen(
        [str(ELICENCE), *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the far end closed: Linux reports EIO
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait() == 0
    shown = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", shown)  # bold and italic: not what is read


@pytest.fixture
def home(tmp_path):
    """A home whose records hold two anchored licences, one revoked (no chain needed)."""
    folder = tmp_path / "home"
    with Records.of_home(folder) as records:
        batch = records.plan(
            digest=b"\x01" * 32,
            licence_type="business-licence",
            chain_id=31337,
            registry="0x" + "ab" * 20,
            root=ROOT,
            licences=PlannedLicences(NUMBERS, IDS, [b"\x00" * 16] * 2, ["91440101MA59XXXX0X"] * 2),
            out_dir=str(tmp_path / "out"),
        )
        records.mark_anchored(batch.id, ANCHOR_TX, 12)
        records.set_status(
            [IDS[0]],
            "REVOKED",
            int(Reason.ADMINISTRATIVE_PENALTY),
            None,
            tx_hash=STATUS_TX,
            block=14,
        )
    return folder


def test_records_at_80_columns_show_numbers_ids_roots_and_transactions_whole(home):
    shown = in_terminal("records", "--home", str(home))
    assert "…" not in shown
    flat = "".join(shown.split())  # a terminal may wrap a long line; nothing is cut
    for value in (*NUMBERS, *("0x" + i.hex() for i in IDS), "0x" + ROOT.hex()):
        assert value in shown
    assert ANCHOR_TX in flat and STATUS_TX in flat
    assert "ADMINISTRATIVE_PENALTY" in shown


def test_records_on_a_wide_terminal_are_one_table(home):
    shown = in_terminal("records", "--home", str(home), columns=400)
    assert "…" not in shown
    rows = [line for line in shown.splitlines() if NUMBERS[0] in line]
    assert len(rows) == 1 and "0x" + IDS[0].hex() in rows[0] and STATUS_TX in rows[0]


def test_records_through_a_pipe_are_tab_separated_and_complete(home):
    result = run_elicence("records", "--home", str(home))
    header, *lines = result.stdout.splitlines()
    assert len(lines) == 2
    revoked = dict(zip(header.split("\t"), lines[0].split("\t"), strict=True))
    assert revoked["number"] == NUMBERS[0] and revoked["licence id"] == "0x" + IDS[0].hex()
    assert revoked["batch root"] == "0x" + ROOT.hex()
    assert ANCHOR_TX in revoked["anchored in"] and STATUS_TX in revoked["status changed in"]


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0
    return result.output


@pytest.mark.parametrize("path", list(_command_paths(get_command(app))), ids=" ".join)
def test_help_fits_80_columns_and_shows_no_type_beside_flags(path):
    text = _help(path)
    assert "<bool>" not in text and "[bold]" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= WIDTH


@pytest.mark.parametrize("path", list(_command_paths(get_command(app))), ids=" ".join)
def test_help_paragraphs_are_filled_to_the_width_not_broken_where_the_source_was(path):
    description = _help(path).split("\nOptions:")[0].split("\nArguments:")[0]
    lines = description.splitlines()[2:]  # after the usage line
    for line, following in itertools.pairwise(lines):
        if line.strip() and following.strip() and line.startswith("  ") and line[2] != " ":
            first_word = following.split()[0]
            assert cell_len(line) + 1 + cell_len(first_word) > WIDTH, (line, following)


def test_flags_are_named_whole_in_help():
    text = _help(("issue",))
    assert "--skip-invalid / --no-skip-invalid" in text
    assert "http://127.0.0.1:8545" in text
