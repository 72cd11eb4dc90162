"""Compile the registry contract and write the artifact the package ships.

Run as ``python -m contracts.build`` (``scripts/compile_contracts`` does) to regenerate
``contracts/LicenceRegistry.json``. Needs a compiler only here, never at run time:

* a native ``solc`` on PATH whose version is exactly :data:`SOLC_VERSION`, else
* ``node_modules/.bin/solcjs`` (npm package ``solc``), driven through a small wrapper
  written to a temporary directory, because solcjs prints a line of chatter before the
  JSON answer and py-solc-x expects pure JSON.

Imports are resolved here, not by the compiler: every source the contract uses (ours
and OpenZeppelin's, found under ``node_modules``) goes into the standard-JSON input by
content, so native solc and solcjs see identical input with no file-system access, and
the artifact can record the sha256 of exactly the files that were compiled.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import solcx

from contracts import ARTIFACT_PATH, CONTRACT_NAME
from contracts.errors import CompilerNotFound

__all__ = [
    "SETTINGS",
    "SOLC_VERSION",
    "build_artifact",
    "compile_registry",
    "find_compiler",
    "main",
    "standard_input",
    "write_artifact",
]

SOLC_VERSION = "0.8.28"
CONTRACTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONTRACTS_DIR.parent
NODE_MODULES = REPO_ROOT / "node_modules"
MAIN_SOURCE = f"contracts/{CONTRACT_NAME}.sol"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}

_IMPORT = re.compile(r'^\s*import\s+(?:[^"\';]*\s+from\s+)?["\']([^"\']+)["\']\s*;', re.M)

# solcjs is an Emscripten build driven by node; the wrapper keeps only its JSON answer.
_SOLCJS_WRAPPER = """\
#!{python}
import subprocess, sys, tempfile
# solcjs's stdout goes to a file, not a pipe: node exits before a pipe drains, which cut
# answers longer than 64 KiB short (node writes to files synchronously).
# The input goes through a file too: node reads a pipe with a non-blocking read, which
# fails (EAGAIN) when the writer has not filled it yet.
with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as answer, \
        tempfile.TemporaryFile(mode="w+", encoding="utf-8") as question:
    question.write(sys.stdin.read())
    question.seek(0)
    result = subprocess.run([{solcjs!r}, *sys.argv[1:]], stdin=question,
                            stdout=answer, stderr=subprocess.PIPE, text=True)
    answer.seek(0)
    out = answer.read()
if "--standard-json" in sys.argv:
    out = out[out.find("{{"):] if "{{" in out else out
sys.stdout.write(out)
sys.stderr.write(result.stderr)
sys.exit(result.returncode)
"""


def source_path(unit: str) -> Path:
    """The file behind source unit name ``unit``: the repository first, then node_modules."""
    for base in (REPO_ROOT, NODE_MODULES):
        candidate = base / unit
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"cannot find Solidity source {unit!r} in the repo or node_modules")


def _resolve(importer: str, target: str) -> str:
    if not target.startswith("."):
        return target  # a package path such as "@openzeppelin/...": an include-path lookup
    parts = importer.split("/")[:-1]
    for part in target.split("/"):
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def collect_sources(main: str = MAIN_SOURCE) -> dict[str, str]:
    """Source unit name -> content, for ``main`` and everything it imports transitively."""
    sources: dict[str, str] = {}
    pending = [main]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        content = source_path(unit).read_text(encoding="utf-8")
        sources[unit] = content
        pending.extend(_resolve(unit, target) for target in _IMPORT.findall(content))
    return dict(sorted(sources.items()))


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    """The standard-JSON compiler input for ``sources`` with the pinned settings."""
    return {
        "language": "Solidity",
        "sources": {unit: {"content": content} for unit, content in sources.items()},
        "settings": SETTINGS,
    }


def _native_solc() -> Path | None:
    found = shutil.which("solc")
    if found is None:
        return None
    try:
        if str(solcx.wrapper.get_solc_version(found)) == SOLC_VERSION:
            return Path(found)
    except (OSError, subprocess.SubprocessError, solcx.exceptions.SolcError):
        return None
    return None


@contextmanager
def find_compiler() -> Iterator[Path]:
    """Yield the path of a compiler executable of the pinned version.

    Raises:
        CompilerNotFound: no native solc of the pinned version and no solcjs.
    """
    native = _native_solc()
    if native is not None:
        yield native
        return
    solcjs = NODE_MODULES / ".bin" / "solcjs"
    if not solcjs.exists():
        raise CompilerNotFound(f"need solc {SOLC_VERSION} on PATH or {solcjs} (run: npm ci)")
    with tempfile.TemporaryDirectory(prefix="elicence-solc-") as tmp:
        wrapper = Path(tmp) / "solc"
        wrapper.write_text(_SOLCJS_WRAPPER.format(python=sys.executable, solcjs=str(solcjs)))
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        yield wrapper


def compiler_version(solc: Path) -> str:
    """The full version string the compiler reports, e.g. ``0.8.28+commit.7893614a...``."""
    output = subprocess.run(
        [str(solc), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"\d+\.\d+\.\d+\S*", output)
    if match is None:
        raise CompilerNotFound(f"{solc} did not report a version: {output!r}")
    return match.group(0)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_artifact(sources: dict[str, str], output: dict[str, Any], version: str) -> dict[str, Any]:
    """The artifact JSON: ABI, bytecodes, compiler version, settings, source hashes."""
    contract = output["contracts"][MAIN_SOURCE][CONTRACT_NAME]
    return {
        "contractName": CONTRACT_NAME,
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
        "compiler": {"name": "solc", "version": version},
        "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
        "sources": {unit: {"sha256": _sha256(content)} for unit, content in sources.items()},
    }


def compile_registry() -> dict[str, Any]:
    """Compile the registry from the current sources and return the artifact JSON."""
    sources = collect_sources()
    with find_compiler() as solc:
        version = compiler_version(solc)
        output = solcx.compile_standard(standard_input(sources), solc_binary=solc)
    return build_artifact(sources, output, version)


def write_artifact(artifact: dict[str, Any], path: Path = ARTIFACT_PATH) -> None:
    """Write ``artifact`` as stable, diff-friendly JSON."""
    text = json.dumps(artifact, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main() -> None:
    """Regenerate ``contracts/LicenceRegistry.json``."""
    artifact = compile_registry()
    write_artifact(artifact)
    size = (len(artifact["deployedBytecode"]) - 2) // 2
    print(
        f"wrote {ARTIFACT_PATH.relative_to(REPO_ROOT)} ({size} bytes deployed, "
        f"solc {artifact['compiler']['version']})"
    )


if __name__ == "__main__":
    main()
