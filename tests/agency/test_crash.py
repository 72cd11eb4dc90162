"""kill -9 during `elicence issue`, then the same command again: it completes, nothing is
anchored twice, no output file is half-written, and the records match the chain.

Real processes: the `elicence` command against an `elicence ledger serve` node. The
process kills itself at a named point (ELICENCE_FAULT, see issuer/faults.py), or is
killed from outside at a random moment.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from issuer.anchoring import anchoring_tx
from issuer.records import BatchState, Records
from issuer.spreadsheet import SPLIT_FROM
from licence.document import loads_document
from tests.agency.conftest import write_csv
from tests.conftest import ELICENCE
from tests.samples import business_licence

pytestmark = pytest.mark.slow

COUNT, BATCH = 12, 5


def _issue_args(node_agency, tmp_path):
    rows = [business_licence(i) for i in range(COUNT)]
    source = write_csv(tmp_path / "licences.csv", rows)
    return [
        "issue",
        str(source),
        "--type",
        "business-licence",
        "--out",
        str(tmp_path / "out"),
        "--batch-size",
        str(BATCH),
    ]


def _assert_complete_and_consistent(node_agency, out):
    registry = node_agency.registry
    with Records.of_home(node_agency.home) as records:
        batches = records.batches()
        licences = records.licences()
    assert [b.count for b in batches] == [5, 5, 2]
    assert all(b.state is BatchState.WRITTEN for b in batches)
    for batch in batches:
        anchor = registry.anchor_of(batch.root)
        assert anchor is not None and anchor.count == batch.count
        assert batch.block == anchor.block_number
        assert batch.tx_hash == anchoring_tx(registry, batch.root, anchor.block_number)
    # one anchoring transaction per batch, ever: the registry refuses a second anchor of a
    # root, and no other root was anchored by this agency
    anchored = registry.chain.w3.keccak(text="BatchAnchored(bytes16,uint32,uint16,uint16,uint32)")
    assert registry.chain.w3.eth.get_logs(
        {
            "address": registry.address,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": ["0x" + anchored.hex().removeprefix("0x")],
        }
    ).__len__() == len(batches)
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".")], "staging or temporary files left"
    assert len([n for n in names if n.endswith(".json") and not n.startswith("batch-")]) == COUNT
    for record in licences:
        document = loads_document((out / f"{record.number}.json").read_bytes())
        assert document.licence_id == record.licence_id
        assert document.computed_root() == record.root


@pytest.mark.parametrize("fault", ["after-plan", "after-send", "mid-write", "before-manifest"])
def test_issue_killed_at_a_step_completes_when_run_again(node_agency, tmp_path, fault):
    args = _issue_args(node_agency, tmp_path)
    killed = node_agency.run(*args, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    finished = node_agency.run(*args)
    assert finished.returncode == 0, finished.stderr
    _assert_complete_and_consistent(node_agency, tmp_path / "out")
    again = node_agency.run(*args)
    assert again.returncode == 0 and "already anchored" in again.stdout


def test_issue_killed_at_a_random_moment_completes_when_run_again(node_agency, tmp_path):
    args = _issue_args(node_agency, tmp_path)
    started = time.monotonic()
    timing = node_agency.run(*args)  # a full run, to learn how long one takes here
    duration = time.monotonic() - started
    assert timing.returncode == 0, timing.stderr
    # then the same on a fresh output and a fresh set of numbers, killed part-way
    rows = [business_licence(i + 1000) for i in range(COUNT)]
    source = write_csv(tmp_path / "second.csv", rows)
    args = [
        "issue",
        str(source),
        "--type",
        "business-licence",
        "--out",
        str(tmp_path / "out2"),
        "--batch-size",
        str(BATCH),
    ]
    process = subprocess.Popen(
        [str(ELICENCE), *args],
        env=node_agency.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(random.uniform(0.3, 1.0) * duration)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = node_agency.run(*args)
    assert finished.returncode == 0, finished.stderr
    names = sorted(p.name for p in (tmp_path / "out2").iterdir())
    assert not [n for n in names if n.startswith(".")]
    with Records.of_home(node_agency.home) as records:
        for batch in records.batches():
            anchor = node_agency.registry.anchor_of(batch.root)
            assert anchor is not None and batch.state is BatchState.WRITTEN
            assert batch.tx_hash == anchoring_tx(
                node_agency.registry, batch.root, anchor.block_number
            )


def _running(command_part: str) -> list[str]:
    """Processes whose command line holds `command_part` (a killed run's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if entry.name.isdigit() and command_part in command:
            found.append(f"{entry.name}: {command}")
    return found


@pytest.mark.parametrize("fault", ["after-plan", "mid-write"])
def test_a_split_file_issued_by_workers_killed_at_a_step_completes_when_run_again(
    node_agency, tmp_path, fault
):
    # Large enough to be split (SPLIT_FROM lines) and issued by worker processes.
    rows = [business_licence(i) for i in range(SPLIT_FROM)]
    source = write_csv(tmp_path / "split.csv", rows)
    out = tmp_path / "out"
    args = ["issue", str(source), "--type", "business-licence", "--out", str(out)]
    args += ["--batch-size", "1000", "--workers", "2", "--no-qr"]
    # Output to a file, not a pipe: a worker left running would hold a pipe open.
    with (tmp_path / "killed.log").open("w") as log:
        killed = subprocess.run(
            [str(ELICENCE), *args], env=node_agency.env(fault), stdout=log, stderr=log, check=False
        )
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()
    # The workers die with the process that started them: none is left to write
    # documents of the killed run into a staging folder the next run uses.
    deadline = time.monotonic() + 5
    while _running(str(source)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _running(str(source))
    for process in left:
        os.kill(int(process.split(":")[0]), signal.SIGKILL)
    assert left == []
    finished = node_agency.run(*args)
    assert finished.returncode == 0, finished.stderr
    with Records.of_home(node_agency.home) as records:
        batches, licences = records.batches(), records.licences()
    assert [b.count for b in batches] == [1000] * 4
    for batch in batches:
        anchor = node_agency.registry.anchor_of(batch.root)
        assert anchor is not None and batch.state is BatchState.WRITTEN
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.startswith(".")]
    for record in licences[::97]:
        document = loads_document((out / f"{record.number}.json").read_bytes())
        assert document.licence_id == record.licence_id
        assert document.computed_root() == record.root
