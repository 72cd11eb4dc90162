"""Where no C compiler is at hand, elicence still builds, and issues on its Python paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_build_without_a_compiler_succeeds_and_issues_in_python(tmp_path):
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    source = tmp_path / "elicence"
    for name in filter(None, tracked):
        target = source / name.decode()
        if (ROOT / name.decode()).is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name.decode()).read_bytes())
    # -S below: no .pth files, so not the editable install's finder, which would find the
    # extension built in the working tree; the installed libraries are on the path.
    libraries = [path for path in sys.path if path.endswith("site-packages")]
    environment = {
        **os.environ,
        "CC": "/bin/false",
        "PYTHONPATH": os.pathsep.join([str(source), *libraries]),
    }
    environment.pop("ELICENCE_PURE_PYTHON", None)
    built = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=source,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert not list(source.glob("issuer/_wrap*.so"))
    # A batch issued there: the Python paths, giving documents that verify.
    issued = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            "from issuer import compiled; assert not compiled.available();"
            "from issuer.batch import encode_batch; from licence.catalogue import catalogue;"
            "from licence.document import loads_document; from tests.samples import "
            "business_licence; t = catalogue().get('business-licence');"
            "b = encode_batch(t, [business_licence(i) for i in range(5)], chain_id=1,"
            " registry='0x' + '11' * 20);"
            "assert all(loads_document(d).computed_root() == b.root for d in b.documents);"
            "print('issued', len(b.documents))",
        ],
        cwd=source,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.strip() == "issued 5"
