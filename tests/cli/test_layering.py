"""The command line is the outermost layer: the library packages never import it, so
that the service, the workers and scripts run without it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LIBRARY = ("contracts", "licence", "ledger", "issuer", "verifier")


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", LIBRARY)
def test_no_library_package_imports_the_command_line(package):
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / package).rglob("*.py"))
        if any(name == "cli" or name.startswith("cli.") for name in _imports_of(path))
    ]
    assert offenders == []


def test_no_command_module_is_left_in_a_library_package():
    leftovers = [
        str(path.relative_to(ROOT))
        for package in LIBRARY
        for path in (ROOT / package).rglob("*.py")
        if path.stem == "cli" or path.stem.startswith("cli_") or path.stem.endswith("_cli")
    ]
    assert leftovers == []


# The verifier issues nothing: its demos reach into the issuer (to issue the demo
# licences through the same path as `elicence issue`), and verifier/compiled_ids.py
# borrows issuing's compiled licence-id encoder, and nothing else of the issuer.
VERIFIER_DEMOS = {"verifier/demo.py", "verifier/service/demo.py"}
BORROWED = {"verifier/compiled_ids.py": {"issuer", "issuer.compiled", "issuer.encoder"}}


def _issuer_imports(path: Path) -> set[str]:
    return {n for n in _imports_of(path) if n == "issuer" or n.startswith("issuer.")}


def test_the_verifier_imports_the_issuer_only_in_its_demos_and_for_the_encoder():
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "verifier").rglob("*.py"))
        if str(path.relative_to(ROOT)) not in VERIFIER_DEMOS
        and not _issuer_imports(path) <= BORROWED.get(str(path.relative_to(ROOT)), set())
    ]
    assert offenders == []
