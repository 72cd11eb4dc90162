"""One Merkle tree per batch, and the proof of each licence in it.

Leaves stay in batch order. Each level pairs neighbours (0,1), (2,3), ...; an inner node
is H(0x01 || min(a, b) || max(a, b)) with min/max comparing the 16-byte strings, so a
proof is just the list of sibling hashes, bottom-up, with no left/right flags. A node
left without a neighbour (the last of an odd level) moves up unchanged and adds nothing
to the proofs below it. A one-leaf tree's root is the leaf itself and its proof is empty.

H is the document's hash suite (licence/digest.py). The registry contract's `includes`
view folds a proof with the same rule for sha256-128 (the EVM has no SM3); verifiers
fold proofs off chain for every suite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from licence.digest import DEFAULT_SUITE, hash_function

_NODE_TAG = b"\x01"


def node_hash(a: bytes, b: bytes, suite: str = DEFAULT_SUITE) -> bytes:
    """The parent of two nodes (order-independent)."""
    low, high = (a, b) if a <= b else (b, a)
    return hash_function(suite)(_NODE_TAG + low + high)


def fold_proof(leaf: bytes, proof: Sequence[bytes], suite: str = DEFAULT_SUITE) -> bytes:
    """The root that `proof` leads to from `leaf`."""
    hasher = hash_function(suite)
    node = leaf
    for sibling in proof:
        low, high = (node, sibling) if node <= sibling else (sibling, node)
        node = hasher(_NODE_TAG + low + high)
    return node


@dataclass(frozen=True)
class MerkleTree:
    """All levels of a batch tree, leaves first."""

    levels: tuple[tuple[bytes, ...], ...]

    @property
    def root(self) -> bytes:
        """The hash anchored on chain."""
        return self.levels[-1][0]

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """The licence ids in batch order."""
        return self.levels[0]

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf `index` up to the root."""
        if not 0 <= index < len(self.leaves):
            raise IndexError(f"leaf {index} is not in a tree of {len(self.leaves)}")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        return path


def build_tree(leaves: Sequence[bytes], suite: str = DEFAULT_SUITE) -> MerkleTree:
    """The tree over `leaves` (at least one)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    hasher: Callable[[bytes], bytes] = hash_function(suite)
    level = tuple(leaves)
    levels = [level]
    while len(level) > 1:
        parents = []
        for i in range(0, len(level) - 1, 2):
            a, b = level[i], level[i + 1]
            parents.append(hasher(_NODE_TAG + (a + b if a <= b else b + a)))
        if len(level) % 2:
            parents.append(level[-1])
        level = tuple(parents)
        levels.append(level)
    return MerkleTree(tuple(levels))
