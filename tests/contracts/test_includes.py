"""The registry's `includes` view folds 16-byte Merkle proofs as the format defines them.

An inner node is the first 16 bytes of sha256(0x01 || min(a, b) || max(a, b)) over two
16-byte nodes. The expected trees are built here with hashlib, so these tests do not
depend on the Python Merkle code; once `licence.merkle` makes 16-byte nodes
(`licence.digest.DIGEST_BYTES == 16`), they also check that it agrees with the contract.
"""

from __future__ import annotations

import hashlib

import pytest

from ledger import Registry
from ledger.registry import DIGEST_BYTES

SIZES = [1, 2, 3, 5, 9]


def sha256_16(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:DIGEST_BYTES]


def leaf_hash(i: int) -> bytes:
    return sha256_16(b"\x00" + f"licence {i}".encode())


def node_hash(a: bytes, b: bytes) -> bytes:
    return sha256_16(b"\x01" + min(a, b) + max(a, b))


def tree_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level, leaves first: neighbours paired, an odd last node moved up unchanged."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        levels.append(parents + level[-1:] if len(level) % 2 else parents)
    return levels


def proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    """Sibling nodes from leaf ``index`` up to the root."""
    path = []
    for level in levels[:-1]:
        if index ^ 1 < len(level):
            path.append(level[index ^ 1])
        index //= 2
    return path


def issuer_tree_builder():
    """licence.merkle.build_tree once the format makes 16-byte nodes, else None."""
    try:
        from licence import digest, merkle
    except ImportError:
        return None
    if getattr(digest, "DIGEST_BYTES", None) != DIGEST_BYTES:
        return None
    return merkle.build_tree


def test_two_leaf_root_is_the_truncated_sorted_pair_hash(registry: Registry) -> None:
    a, b = leaf_hash(0), leaf_hash(1)
    root = hashlib.sha256(b"\x01" + min(a, b) + max(a, b)).digest()[:16]
    assert len(root) == DIGEST_BYTES
    assert registry.includes(root, a, [b])
    assert registry.includes(root, b, [a])


def test_the_full_sha256_of_a_pair_is_not_its_node(registry: Registry) -> None:
    a, b = leaf_hash(0), leaf_hash(1)
    full = hashlib.sha256(b"\x01" + min(a, b) + max(a, b)).digest()
    assert not registry.includes(full[16:], a, [b])


@pytest.mark.parametrize("size", SIZES)
def test_every_leaf_of_a_tree_is_included(registry: Registry, size: int) -> None:
    levels = tree_levels([leaf_hash(i) for i in range(size)])
    root = levels[-1][0]
    for index, leaf in enumerate(levels[0]):
        assert registry.includes(root, leaf, proof(levels, index)), index


@pytest.mark.parametrize("size", SIZES)
def test_foreign_leaf_or_wrong_proof_is_not_included(registry: Registry, size: int) -> None:
    levels = tree_levels([leaf_hash(i) for i in range(size)])
    root = levels[-1][0]
    assert not registry.includes(root, leaf_hash(99), proof(levels, 0))
    if size > 1:
        forged = [*proof(levels, size - 1)[:-1], leaf_hash(99)]
        assert not registry.includes(root, levels[0][0], forged)


def test_one_leaf_tree_root_is_the_leaf(registry: Registry) -> None:
    leaf = leaf_hash(0)
    assert registry.includes(leaf, leaf, [])
    assert not registry.includes(leaf_hash(1), leaf, [])


@pytest.mark.parametrize("size", SIZES)
def test_issuer_merkle_agrees_with_the_contract(registry: Registry, size: int) -> None:
    build_tree = issuer_tree_builder()
    if build_tree is None:
        pytest.skip("licence.merkle does not make 16-byte nodes yet (licence.digest.DIGEST_BYTES)")
    leaves = [leaf_hash(i) for i in range(size)]
    tree = build_tree(leaves)
    levels = tree_levels(leaves)
    assert tree.root == levels[-1][0]
    for index, leaf in enumerate(leaves):
        assert tree.proof(index) == proof(levels, index), index
        assert registry.includes(tree.root, leaf, tree.proof(index)), index
