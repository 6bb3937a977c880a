"""The RFC 9162 §2.1 Merkle tree computed the slow, obvious way, to check the store against."""

import hashlib


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: list[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC's recursive definition."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two smaller than n
    return node_hash(root(leaf_hashes[:k]), root(leaf_hashes[k:]))


def complete_subtrees(leaf_hashes: list[bytes]) -> dict[tuple[int, int], bytes]:
    """The hash of every complete subtree ``(level, index)`` of the tree of these leaves."""
    nodes = {}
    level, row = 0, list(leaf_hashes)
    while row:
        nodes.update({(level, index): digest for index, digest in enumerate(row)})
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
    return nodes
