"""docs/agency.md, "Setting up", followed to the letter from an empty home: the commands
are read from the guide itself and run in its order as real processes, the node among
them (not in dev mode: as a user starts it). The only liberties: the node listens on a
free loopback port (ELICENCE_CHAIN tells the other commands where), the passphrase comes
from ELICENCE_PASSPHRASE, and `0x...` is the address step 3 printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest

from tests.conftest import ELICENCE, REPO_ROOT, _wait_for_port, free_port

pytestmark = pytest.mark.slow

GUIDE = REPO_ROOT / "docs" / "agency.md"


def documented_commands() -> list[list[str]]:
    """The `elicence` commands of the guide's "Setting up" block, in order."""
    section = GUIDE.read_text(encoding="utf-8").split("## Setting up", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == "elicence", line
            commands.append(words[1:])
    return commands


def test_the_guide_sets_up_a_chain_before_anything_needs_one():
    commands = documented_commands()
    assert commands[0][:2] == ["ledger", "serve"]
    assert [c[:2] for c in commands[1:4]] == [
        ["registry", "deploy"],
        ["agency", "new"],
        ["agency", "authorise"],
    ]
    assert commands[-1][0] == "issue"


def test_following_the_setting_up_steps_from_an_empty_home_issues_the_example_sheet(
    tmp_path, isolated_home
):
    home = isolated_home
    assert not any(home.iterdir())
    port = free_port()
    env = {
        **os.environ,
        "ELICENCE_HOME": str(home),
        "ELICENCE_CHAIN": f"http://127.0.0.1:{port}",
        "ELICENCE_PASSPHRASE": "correct horse battery staple",
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    node_command, *steps = documented_commands()
    # The guide names examples/ as seen from the project's folder.
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    with (tmp_path / "node.log").open("wb") as log:
        node = subprocess.Popen(
            [str(ELICENCE), *node_command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        _wait_for_port(port, node, 60, "elicence ledger serve")
        printed_address = None
        for step in steps:
            if "0x..." in step:
                assert printed_address is not None, "the guide uses an address before printing it"
            words = [printed_address if word == "0x..." else word for word in step]
            done = subprocess.run(
                [str(ELICENCE), *words],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                check=False,
            )
            assert done.returncode == 0, (step, done.stdout, done.stderr)
            found = re.search(r"authorise --address (0x[0-9a-fA-F]{40})", done.stdout)
            if found:
                printed_address = found.group(1)
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=30)

    config = json.loads((home / "config.json").read_text(encoding="utf-8"))
    assert config["registry"] and config["chainId"]
    sheet = (tmp_path / "examples" / "business-licences.csv").read_text(encoding="utf-8-sig")
    rows = len(sheet.strip().splitlines()) - 1
    issued = [p for p in (tmp_path / "issued").glob("*.json") if not p.name.startswith("batch-")]
    assert len(issued) == rows
