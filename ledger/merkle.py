"""The RFC 9162 §2.1 Merkle tree, computed from stored complete subtrees.

The log stores the hash of every *complete* subtree: node ``(level, index)`` covers leaves
``[index * 2**level, (index + 1) * 2**level)``. Every tree the RFC defines (a root, the subtree
hashes in a proof) is a right fold over at most ``log2(n)`` such nodes, so a root, an inclusion
proof or a consistency proof costs O(log n) reads and never a rebuild.

The functions here are pure: they say which nodes they need and compute from a mapping of them.
"""

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

Node = tuple[int, int]
"""A complete subtree: ``(level, index)``."""

Range = tuple[int, int]
"""A half-open range of leaf indices ``[start, end)``."""

NodeReader = Callable[[Iterable[Node]], Mapping[Node, bytes]]
"""Returns the stored hash of each node asked for."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (for ``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def complete_subtrees(start: int, end: int) -> list[Node]:
    """The complete subtrees that make up the RFC tree of leaves ``[start, end)``, left to right.

    ``start`` must be aligned as the RFC's recursion aligns it: a multiple of the largest power
    of two not exceeding ``end - start``. The tree of such a range is its complete subtrees of
    decreasing size, folded from the right.
    """
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of a range's complete subtrees, right to left, into the range's hash."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form the inclusion proof of leaf ``index`` (RFC 9162 §2.1.3.1)."""
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose hashes form the consistency proof from ``first`` to ``second``.

    RFC 9162 §2.1.4.1, SUBPROOF(m, D[n], true), with ``0 < first <= second``.
    """
    ranges: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def ranges_hashes(ranges: Sequence[Range], read: NodeReader) -> list[bytes]:
    """The hash of each range, from one read of all the complete subtrees they need."""
    plans = [complete_subtrees(start, end) for start, end in ranges]
    stored = read({node for plan in plans for node in plan})
    return [fold([stored[node] for node in plan]) for plan in plans]


def root(size: int, read: NodeReader) -> bytes:
    return ranges_hashes([(0, size)], read)[0]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    return ranges_hashes(inclusion_ranges(index, size), read)


def consistency_proof(first: int, second: int, read: NodeReader) -> list[bytes]:
    return ranges_hashes(consistency_ranges(first, second), read)


def extend(frontier: Sequence[tuple[Node, bytes]], leaves: Iterable[tuple[int, bytes]]
           ) -> tuple[list[tuple[Node, bytes]], list[tuple[Node, bytes]]]:
    """Append leaves to a tree known by its frontier; return the new nodes and the new frontier.

    The frontier of a tree of size n is its complete subtrees ``complete_subtrees(0, n)`` with
    their hashes. ``leaves`` are ``(index, leaf_hash)`` pairs with consecutive indices starting
    at n. Every complete subtree the new leaves complete is returned, leaves included.
    """
    stack = list(frontier)
    created: list[tuple[Node, bytes]] = []
    for index, digest in leaves:
        stack.append(((0, index), digest))
        created.append(stack[-1])
        while len(stack) >= 2 and stack[-1][0][0] == stack[-2][0][0]:
            (level, _), right = stack.pop()
            (_, left_index), left = stack.pop()
            stack.append(((level + 1, left_index >> 1), node_hash(left, right)))
            created.append(stack[-1])
    return created, stack
