"""The registry's `includes` view agrees with the Python Merkle code (issuer.merkle)."""

from __future__ import annotations

import hashlib

import pytest

from issuer.merkle import build_tree
from ledger import Registry


def leaf_hash(i: int) -> bytes:
    return hashlib.sha256(b"\x00" + f"licence {i}".encode()).digest()


def test_two_leaf_root_is_the_sorted_pair_hash(registry: Registry) -> None:
    a, b = leaf_hash(0), leaf_hash(1)
    root = hashlib.sha256(b"\x01" + min(a, b) + max(a, b)).digest()
    assert registry.includes(root, a, [b])
    assert registry.includes(root, b, [a])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 9])
def test_every_leaf_of_a_python_tree_is_included(registry: Registry, size: int) -> None:
    leaves = [leaf_hash(i) for i in range(size)]
    tree = build_tree(leaves, suite="sha256")
    for index, leaf in enumerate(leaves):
        assert registry.includes(tree.root, leaf, tree.proof(index)), index


@pytest.mark.parametrize("size", [1, 2, 3, 5, 9])
def test_foreign_leaf_or_wrong_proof_is_not_included(registry: Registry, size: int) -> None:
    leaves = [leaf_hash(i) for i in range(size)]
    tree = build_tree(leaves, suite="sha256")
    assert not registry.includes(tree.root, leaf_hash(99), tree.proof(0))
    if size > 1:
        forged = [*tree.proof(size - 1)[:-1], leaf_hash(99)]
        assert not registry.includes(tree.root, leaves[0], forged)


def test_one_leaf_tree_root_is_the_leaf(registry: Registry) -> None:
    leaf = leaf_hash(0)
    assert registry.includes(leaf, leaf, [])
    assert not registry.includes(leaf_hash(1), leaf, [])
