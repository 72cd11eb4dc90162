"""The worker pool forks its workers whatever Python's default start method is.

Forking is what makes the pool cheap (the workers share the input's pages instead of
receiving it pickled) and what lets a worker know its parent; Python 3.14 defaults to
forkserver on Linux, which must change neither.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from issuer.pool import POOL_THRESHOLD
from tests.conftest import REPO_ROOT

# Runs in its own interpreter: the default start method is set once per process.
_SCRIPT = textwrap.dedent(
    """
    import json, multiprocessing, os, sys
    from pathlib import Path

    multiprocessing.set_start_method("forkserver", force=True)

    from eth_account import Account

    from issuer import pool
    from issuer.issuing import AgencyContext, IssueOptions, issue_rows
    from issuer.records import Records
    from ledger import Registry, connect
    from licence.catalogue import catalogue
    from tests.samples import business_licence

    out, count = Path(sys.argv[1]), int(sys.argv[2])
    started = out.parent / "workers"
    start_worker = pool._start_worker

    def recording_start(*args):
        # Runs in the worker only if it was forked: a forkserver child imports the
        # module afresh and runs the original.
        with started.open("a") as handle:
            handle.write(f"{os.getpid()} {os.getppid()}\\n")
        start_worker(*args)

    pool._start_worker = recording_start
    chain = connect("embedded")
    governor, agency = Account.create(), Account.create()
    for account in (governor, agency):
        chain.fund(account.address, 10**21)
    registry = Registry.deploy(chain, governor)
    business = catalogue().get("business-licence")
    registry.publish_licence_types(governor, [business])
    registry.register_agency(
        governor, "91110108551385082Q", "agency", agency.address, [business.code]
    )
    rows = [business_licence(i) for i in range(count)]
    with Records(out.parent / "records.sqlite") as records:
        report = issue_rows(
            AgencyContext(registry, agency, records),
            business,
            rows,
            out,
            options=IssueOptions(batch_size=count // 2, qr=False, workers=2),
        )
    print(json.dumps({
        "default": multiprocessing.get_start_method(),
        "pid": os.getpid(),
        "issued": report.count,
    }))
    """
)


@pytest.mark.slow
def test_issuing_forks_its_workers_when_the_default_start_method_is_forkserver(tmp_path: Path):
    out = tmp_path / "issued"
    count = POOL_THRESHOLD
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out), str(count)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["default"] == "forkserver"
    assert summary["issued"] == count
    assert len(list(out.glob("*.json"))) == count + 2  # the licences and two manifests
    workers = [line.split() for line in (tmp_path / "workers").read_text().splitlines()]
    # Two workers, each a child of the issuing process itself: forked, not started by a
    # forkserver (whose children would not have run the recording initializer at all).
    assert len(workers) == 2
    assert all(int(parent) == summary["pid"] for _, parent in workers)
