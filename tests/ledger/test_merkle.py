"""ledger.merkle: known answers from transparency-dev/merkle, and properties against RFC 9162 §2.1.

The stored-subtree algorithms (root, inclusion_proof, consistency_proof, extend) are checked
against the published vectors (vectors/merkle/, see vectors/README.md) and against a naive
recursive transcription of MTH, PATH and PROOF/SUBPROOF from RFC 9162 §2.1, written below
without reference to the code under test.
"""

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle

VECTORS = Path(__file__).parent / "vectors" / "merkle"
MAX_SIZE = 400
EXHAUSTIVE_SIZE = 64


def load_vector(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


REFERENCE = load_vector("rfc6962_tree.json")
REFERENCE_LEAVES = [bytes.fromhex(h) for h in REFERENCE["leaf_inputs_hex"]]
REFERENCE_NODES = {
    (level, index): bytes.fromhex(h)
    for level, row in enumerate(REFERENCE["node_hashes_hex"])
    for index, h in enumerate(row)
}
REFERENCE_ROOTS = [bytes.fromhex(h) for h in REFERENCE["root_hashes_hex_by_size"]]
REFERENCE_FRONTIERS = REFERENCE["compact_trees_by_size"]["trees"]
PROOFS = load_vector("proofs.json")
SUBTREE_DIGESTS = load_vector("subtree_digests.json")


# --- RFC 9162 §2.1, transcribed naively --------------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]), RFC 9162 §2.1.1."""
    n = len(d)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + d[0])
    k = largest_power_of_two_below(n)
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def rfc_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return rfc_path(m, d[:k]) + [mth(d[k:])]
    return rfc_path(m - k, d[k:]) + [mth(d[:k])]


def rfc_proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]), RFC 9162 §2.1.4.1."""
    return rfc_subproof(m, d, True)


def rfc_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return rfc_subproof(m, d[:k], b) + [mth(d[k:])]
    return rfc_subproof(m - k, d[k:], False) + [mth(d[:k])]


# --- helpers over the code under test ----------------------------------------------------------

def store_of(leaf_data: list[bytes]) -> dict:
    created, _ = merkle.extend([], enumerate(merkle.leaf_hash(d) for d in leaf_data))
    return dict(created)


class Reader:
    """A NodeReader over a dict of stored hashes that remembers how many nodes it served."""

    def __init__(self, store: dict):
        self.store = store
        self.nodes_read = 0

    def __call__(self, nodes):
        nodes = list(nodes)
        self.nodes_read += len(nodes)
        return {node: self.store[node] for node in nodes}


LEAF_DATA = [b"ecoledger leaf %d" % i for i in range(MAX_SIZE)]
STORE = store_of(LEAF_DATA)
REFERENCE_STORE = store_of(REFERENCE_LEAVES)

sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def size_and_index(draw):
    size = draw(sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def two_sizes(draw):
    second = draw(sizes)
    return draw(st.integers(min_value=1, max_value=second)), second


def hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


# --- the naive reference is itself right -------------------------------------------------------

def test_naive_reference_reproduces_the_published_roots():
    assert [mth(REFERENCE_LEAVES[:n]) for n in range(9)] == REFERENCE_ROOTS


def test_naive_reference_reproduces_the_published_proofs():
    for case in PROOFS["inclusion"]:
        leaves = REFERENCE_LEAVES[: case["tree_size"]]
        assert hexes(rfc_path(case["leaf_index"], leaves)) == case["proof"]
    for case in PROOFS["consistency"]:
        leaves = REFERENCE_LEAVES[: case["size2"]]
        assert hexes(rfc_proof(case["size1"], leaves)) == case["proof"]


# --- hashing known answers ---------------------------------------------------------------------

def test_empty_root_is_sha256_of_the_empty_string():
    assert merkle.EMPTY_ROOT.hex() == REFERENCE["hasher"]["empty_root"]
    assert merkle.root(0, Reader({})) == merkle.EMPTY_ROOT


def test_leaf_hash_of_the_empty_leaf():
    assert merkle.leaf_hash(b"").hex() == REFERENCE["hasher"]["empty_leaf"]


def test_leaf_hash_is_domain_separated_from_the_empty_root():
    assert merkle.leaf_hash(b"") != merkle.EMPTY_ROOT


def test_leaf_hash_known_answer():
    assert merkle.leaf_hash(b"L123456").hex() == REFERENCE["hasher"]["leaf_L123456"]


def test_node_hash_known_answer():
    assert merkle.node_hash(b"N123", b"N456").hex() == REFERENCE["hasher"]["node_N123_N456"]


# --- the RFC 6962 reference tree ---------------------------------------------------------------

@pytest.mark.parametrize("size", range(9))
def test_root_of_each_prefix_of_the_reference_tree(size):
    assert merkle.root(size, Reader(REFERENCE_STORE)) == REFERENCE_ROOTS[size]


def test_extend_stores_exactly_the_reference_complete_subtrees():
    assert REFERENCE_STORE == REFERENCE_NODES


@pytest.mark.parametrize("size", range(9))
def test_frontier_is_the_reference_compact_range(size):
    hashes = [merkle.leaf_hash(d) for d in REFERENCE_LEAVES[:size]]
    _, frontier = merkle.extend([], enumerate(hashes))
    expected = [((level, index), REFERENCE_NODES[(level, index)]) for level, index in REFERENCE_FRONTIERS[size]]
    assert frontier == expected


@pytest.mark.parametrize("case", PROOFS["inclusion"], ids=lambda c: f"leaf{c['leaf_index']}-of-{c['tree_size']}")
def test_inclusion_proof_known_answers(case):
    proof = merkle.inclusion_proof(case["leaf_index"], case["tree_size"], Reader(REFERENCE_STORE))
    assert hexes(proof) == case["proof"]


@pytest.mark.parametrize("case", PROOFS["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_proof_known_answers(case):
    proof = merkle.consistency_proof(case["size1"], case["size2"], Reader(REFERENCE_STORE))
    assert hexes(proof) == case["proof"]


# --- the draft-ietf-plants-merkle-tree-certs subtree vectors (130 leaves) ----------------------

SUBTREE_LEAVES = [bytes([i]) for i in range(130)]
SUBTREE_STORE = store_of(SUBTREE_LEAVES)


def is_valid_subtree(start: int, end: int) -> bool:
    """transparency-dev/merkle testonly/tree.go isSubtreeValid, for start < end."""
    if start == 0:
        return True
    bit_ceil = 1 << (end - start - 1).bit_length()
    return start % bit_ceil == 0


def valid_subtrees():
    for end in range(1, len(SUBTREE_LEAVES) + 1):
        for start in range(end):
            if is_valid_subtree(start, end):
                yield start, end


def test_subtree_hashes_match_the_published_rolling_digest():
    digest = hashlib.sha256()
    reader = Reader(SUBTREE_STORE)
    for start, end in valid_subtrees():
        (subtree_hash,) = merkle.ranges_hashes([(start, end)], reader)
        digest.update(f"[{start}, {end}) {subtree_hash.hex()}\n".encode())
    assert digest.hexdigest() == SUBTREE_DIGESTS["subtree_hash_digest"]


def test_subtree_inclusion_proofs_match_the_published_rolling_digest():
    digest = hashlib.sha256()
    reader = Reader(SUBTREE_STORE)
    for start, end in valid_subtrees():
        for index in range(start, end):
            ranges = [(start + a, start + b) for a, b in merkle.inclusion_ranges(index - start, end - start)]
            proof = merkle.ranges_hashes(ranges, reader)
            digest.update((f"{index} [{start}, {end})" + "".join(f" {h.hex()}" for h in proof) + "\n").encode())
    assert digest.hexdigest() == SUBTREE_DIGESTS["subtree_inclusion_digest"]


# --- properties against the naive RFC definitions ----------------------------------------------

def test_split_point_is_the_largest_power_of_two_below_n():
    for n in range(2, 2049):
        assert merkle.split_point(n) == largest_power_of_two_below(n), n


def test_complete_subtrees_tile_the_tree_in_decreasing_sizes():
    assert merkle.complete_subtrees(0, 0) == []
    for n in range(1, MAX_SIZE + 1):
        nodes = merkle.complete_subtrees(0, n)
        spans = [(index << level, (index + 1) << level) for level, index in nodes]
        assert [start for start, _ in spans] == [0] + [end for _, end in spans[:-1]], n
        assert spans[-1][1] == n
        levels = [level for level, _ in nodes]
        assert levels == sorted(set(levels), reverse=True), n


def test_root_matches_mth_for_every_size_up_to_the_maximum():
    for n in range(0, MAX_SIZE + 1):
        assert merkle.root(n, Reader(STORE)) == mth(LEAF_DATA[:n]), f"size {n}"


def test_inclusion_proof_matches_path_for_every_leaf_of_small_trees():
    for n in range(1, EXHAUSTIVE_SIZE + 1):
        leaves = LEAF_DATA[:n]
        for m in range(n):
            assert merkle.inclusion_proof(m, n, Reader(STORE)) == rfc_path(m, leaves), f"leaf {m} of {n}"


@settings(max_examples=150, deadline=None)
@given(size_and_index())
def test_inclusion_proof_matches_path(case):
    n, m = case
    assert merkle.inclusion_proof(m, n, Reader(STORE)) == rfc_path(m, LEAF_DATA[:n])


def test_consistency_proof_matches_proof_for_every_pair_of_small_sizes():
    for n in range(1, EXHAUSTIVE_SIZE + 1):
        leaves = LEAF_DATA[:n]
        for m in range(1, n + 1):
            assert merkle.consistency_proof(m, n, Reader(STORE)) == rfc_proof(m, leaves), f"{m} to {n}"


@settings(max_examples=150, deadline=None)
@given(two_sizes())
def test_consistency_proof_matches_proof(case):
    m, n = case
    assert merkle.consistency_proof(m, n, Reader(STORE)) == rfc_proof(m, LEAF_DATA[:n])


@st.composite
def batch_splits(draw):
    n = draw(st.integers(min_value=0, max_value=MAX_SIZE))
    cuts = draw(st.lists(st.integers(min_value=0, max_value=n), max_size=12))
    bounds = sorted({0, n, *cuts})
    return n, list(zip(bounds, bounds[1:]))


@settings(max_examples=100, deadline=None)
@given(batch_splits())
def test_extend_in_any_batch_split_stores_the_same_nodes(split):
    n, batches = split
    hashes = [merkle.leaf_hash(d) for d in LEAF_DATA[:n]]
    store, frontier = {}, []
    for start, end in batches:
        created, frontier = merkle.extend(frontier, [(i, hashes[i]) for i in range(start, end)])
        for (level, index), digest in created:
            assert (level, index) not in store, "a node was created twice"
            assert start < (index + 1) << level <= end, "a created node was not completed by this batch"
            assert digest == mth(LEAF_DATA[index << level:(index + 1) << level])
            store[(level, index)] = digest
        assert [node for node, _ in frontier] == merkle.complete_subtrees(0, end)
    assert store == {node: h for node, h in STORE.items() if (node[1] + 1) << node[0] <= n}
    assert merkle.root(n, Reader(store)) == mth(LEAF_DATA[:n])


def test_a_smaller_tree_is_read_from_the_same_store():
    # Stored subtrees never change: every past tree size is computable from today's store.
    for n in range(1, 40):
        assert merkle.root(n, Reader(STORE)) == mth(LEAF_DATA[:n])
        assert merkle.root(n, Reader(store_of(LEAF_DATA[:n]))) == mth(LEAF_DATA[:n])


# --- proofs cost O(log n) stored hashes ---------------------------------------------------------

class ZeroReader(Reader):
    """Serves a dummy hash for any node, so proofs over huge trees can be planned without a tree."""

    def __init__(self):
        super().__init__({})

    def __call__(self, nodes):
        nodes = list(nodes)
        self.nodes_read += len(nodes)
        return {node: bytes(32) for node in nodes}


def log_bound(n: int) -> int:
    return 2 * n.bit_length() + 2


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2**40), st.data())
def test_inclusion_proof_reads_logarithmically_many_hashes(n, data):
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    reader = ZeroReader()
    proof = merkle.inclusion_proof(m, n, reader)
    assert len(proof) <= n.bit_length()
    assert reader.nodes_read <= log_bound(n)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=2**40), st.data())
def test_consistency_proof_reads_logarithmically_many_hashes(n, data):
    m = data.draw(st.integers(min_value=1, max_value=n))
    reader = ZeroReader()
    proof = merkle.consistency_proof(m, n, reader)
    assert len(proof) <= n.bit_length() + 1
    assert reader.nodes_read <= log_bound(n)


def test_root_reads_one_hash_per_set_bit_of_the_size():
    for n in (1, 2, 3, 1_000_000, 2**40 - 1):
        reader = ZeroReader()
        merkle.root(n, reader)
        assert reader.nodes_read == bin(n).count("1")
