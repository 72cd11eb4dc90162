"""elicence contracts: the licence registry's Solidity sources and compiled artifact.

The artifact (``LicenceRegistry.json``) ships with the package, so nothing here needs a
compiler at run time; ``contracts.build`` (``scripts/compile_contracts``) regenerates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from contracts.errors import ArtifactInvalid, CompilerNotFound, ContractsError

__all__ = [
    "ARTIFACT_PATH",
    "CONTRACT_NAME",
    "ArtifactInvalid",
    "CompilerNotFound",
    "ContractArtifact",
    "ContractsError",
    "load_artifact",
]

CONTRACT_NAME = "LicenceRegistry"
ARTIFACT_PATH = Path(__file__).resolve().parent / f"{CONTRACT_NAME}.json"


@dataclass(frozen=True)
class ContractArtifact:
    """The compiled registry: what deploying and calling it needs, and its provenance.

    ``bytecode`` and ``deployed_bytecode`` are 0x-prefixed hex; ``source_hashes`` maps
    each compiled source unit (ours and OpenZeppelin's) to the sha256 hex of its text.
    """

    contract_name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    settings: dict[str, Any]
    source_hashes: dict[str, str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContractArtifact:
        """Build from the artifact JSON written by ``contracts.build``."""
        try:
            return cls(
                contract_name=data["contractName"],
                abi=tuple(data["abi"]),
                bytecode=data["bytecode"],
                deployed_bytecode=data["deployedBytecode"],
                compiler_version=data["compiler"]["version"],
                settings=data["settings"],
                source_hashes={u: s["sha256"] for u, s in data["sources"].items()},
            )
        except (KeyError, TypeError) as exc:
            raise ArtifactInvalid(f"contract artifact lacks {exc}") from exc


@cache
def load_artifact() -> ContractArtifact:
    """The packaged registry artifact (read once, then cached).

    Raises:
        ArtifactInvalid: the artifact is missing or malformed.
    """
    try:
        text = resources.files(__name__).joinpath(ARTIFACT_PATH.name).read_text("utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ArtifactInvalid(
            f"cannot read {ARTIFACT_PATH.name}: {exc} (run scripts/compile_contracts)"
        ) from exc
    return ContractArtifact.from_json(data)
