"""ledger.verify: the auditor's verifier (specs/log.md §5).

Correct proofs come from transparency-dev/merkle's published vectors and from a naive
transcription of RFC 9162 §2.1 (not from ledger.merkle), so the verifier is checked
independently of the prover. Every failure must be a VerificationError with a message.
"""

import base64
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint
from ledger.encoding import b64encode, canonical
from ledger.keys import SigningKey
from ledger.note import sign_note
from ledger.verify import (
    VerificationError,
    leaf_hash,
    open_checkpoint,
    verify_consistency,
    verify_entry_signature,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors"
MERKLE_VECTORS = VECTORS / "merkle"
MAX_SIZE = 400
EXHAUSTIVE_SIZE = 32


# --- RFC 9162 §2.1, transcribed naively, over leaves d[i] = b"leaf %d" ---------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def leaf_data(i: int) -> bytes:
    return b"leaf %d" % i


@lru_cache(maxsize=None)
def mth(start: int, end: int) -> bytes:
    """MTH(D[start:end])."""
    n = end - start
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + leaf_data(start))
    k = largest_power_of_two_below(n)
    return sha256(b"\x01" + mth(start, start + k) + mth(start + k, end))


def rfc_path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end])."""
    n = end - start
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return rfc_path(m, start, start + k) + [mth(start + k, end)]
    return rfc_path(m - k, start + k, end) + [mth(start, start + k)]


def rfc_subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b)."""
    n = end - start
    if m == n:
        return [] if b else [mth(start, end)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return rfc_subproof(m, start, start + k, b) + [mth(start + k, end)]
    return rfc_subproof(m - k, start + k, end, False) + [mth(start, start + k)]


def inclusion_case(m: int, n: int):
    return m, n, sha256(b"\x00" + leaf_data(m)), rfc_path(m, 0, n), mth(0, n)


def consistency_case(m: int, n: int):
    return m, n, rfc_subproof(m, 0, n, True), mth(0, m), mth(0, n)


# --- tampering -------------------------------------------------------------------------------------

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def each_hash_flipped(proof):
    for i in range(len(proof)):
        yield f"proof[{i}] bit flipped", proof[:i] + [flip(proof[i])] + proof[i + 1:]


def each_hash_dropped(proof):
    for i in range(len(proof)):
        yield f"proof[{i}] dropped", proof[:i] + proof[i + 1:]


def each_hash_inserted(proof):
    for i in range(len(proof) + 1):
        yield f"hash inserted at {i}", proof[:i] + [SOME_HASH] + proof[i:]


def tampered_inclusions(m, n, leaf, proof, root):
    """transparency-dev/merkle proof/verify_test.go corruptInclusionProof, plus every position."""
    yield "index - 1", (m - 1, n, leaf, proof, root)
    yield "index + 1", (m + 1, n, leaf, proof, root)
    yield "index ^ 2", (m ^ 2, n, leaf, proof, root)
    yield "size * 2", (m, n * 2, leaf, proof, root)
    yield "size / 2", (m, n // 2, leaf, proof, root)
    yield "wrong leaf", (m, n, flip(leaf), proof, root)
    yield "wrong root", (m, n, leaf, proof, flip(root))
    yield "empty root", (m, n, leaf, proof, EMPTY_ROOT)
    yield "random root", (m, n, leaf, proof, SOME_HASH)
    yield "trailing garbage", (m, n, leaf, proof + [b""], root)
    yield "trailing root", (m, n, leaf, proof + [root], root)
    yield "preceding garbage", (m, n, leaf, [b""] + proof, root)
    yield "preceding root", (m, n, leaf, [root] + proof, root)
    for variants in (each_hash_flipped(proof), each_hash_dropped(proof), each_hash_inserted(proof)):
        for name, bad in variants:
            yield name, (m, n, leaf, bad, root)


def tampered_consistencies(m, n, proof, root1, root2):
    """transparency-dev/merkle proof/verify_test.go corruptConsistencyProof, plus every position."""
    yield "size1 - 1", (m - 1, n, proof, root1, root2)
    yield "size1 + 1", (m + 1, n, proof, root1, root2)
    yield "size1 ^ 2", (m ^ 2, n, proof, root1, root2)
    yield "size2 * 2", (m, n * 2, proof, root1, root2)
    yield "size2 / 2", (m, n // 2, proof, root1, root2)
    yield "wrong root1", (m, n, proof, flip(root1), root2)
    yield "wrong root2", (m, n, proof, root1, flip(root2))
    yield "swapped roots", (m, n, proof, root2, root1)
    yield "empty proof", (m, n, [], root1, root2)
    yield "trailing garbage", (m, n, proof + [b""], root1, root2)
    yield "trailing root1", (m, n, proof + [root1], root1, root2)
    yield "trailing root2", (m, n, proof + [root2], root1, root2)
    yield "preceding garbage", (m, n, [b""] + proof, root1, root2)
    yield "preceding root1", (m, n, [root1] + proof, root1, root2)
    yield "preceding root2", (m, n, [root2] + proof, root1, root2)
    yield "preceding proof[0]", (m, n, [proof[0]] + proof, root1, root2)
    for variants in (each_hash_flipped(proof), each_hash_dropped(proof), each_hash_inserted(proof)):
        for name, bad in variants:
            yield name, (m, n, bad, root1, root2)


def assert_all_rejected(verify, probes):
    accepted = []
    for name, args in probes:
        try:
            verify(*args)
        except VerificationError as exc:
            assert str(exc), f"{name}: empty message"
        else:
            accepted.append(name)
    assert not accepted, f"tampered proofs accepted: {accepted}"


@st.composite
def size_and_index(draw):
    n = draw(st.integers(min_value=1, max_value=MAX_SIZE))
    return draw(st.integers(min_value=0, max_value=n - 1)), n


@st.composite
def two_different_sizes(draw):
    n = draw(st.integers(min_value=2, max_value=MAX_SIZE))
    return draw(st.integers(min_value=1, max_value=n - 1)), n


# --- transparency-dev/merkle testdata (golden and tampered, verbatim) -----------------------------

def b64_or_empty(value):
    return [] if value is None else [base64.b64decode(v) for v in value]


def vector_files(kind):
    return sorted((MERKLE_VECTORS / kind).glob("*/*.json"))


def vector_id(path):
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", vector_files("inclusion"), ids=vector_id)
def test_inclusion_vectors(path):
    v = json.loads(path.read_text())
    args = (v["leafIdx"], v["treeSize"], base64.b64decode(v["leafHash"]), b64_or_empty(v["proof"]),
            base64.b64decode(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        assert verify_inclusion(*args) is None


@pytest.mark.parametrize("path", vector_files("consistency"), ids=vector_id)
def test_consistency_vectors(path):
    v = json.loads(path.read_text())
    args = (v["size1"], v["size2"], b64_or_empty(v["proof"]), base64.b64decode(v["root1"]),
            base64.b64decode(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        assert verify_consistency(*args) is None


def test_verifiers_return_none_rather_than_a_boolean():
    assert verify_inclusion(*inclusion_case(3, 7)) is None
    assert verify_consistency(*consistency_case(3, 7)) is None


# --- properties: every correct proof accepted, every tampered one rejected ------------------------

def test_every_correct_inclusion_proof_in_small_trees_is_accepted():
    for n in range(1, EXHAUSTIVE_SIZE + 1):
        for m in range(n):
            verify_inclusion(*inclusion_case(m, n))


def test_every_tampered_inclusion_proof_in_small_trees_is_rejected():
    for n in range(1, EXHAUSTIVE_SIZE + 1):
        for m in range(n):
            assert_all_rejected(verify_inclusion, tampered_inclusions(*inclusion_case(m, n)))


@settings(max_examples=100, deadline=None)
@given(size_and_index())
def test_correct_inclusion_proofs_are_accepted(case):
    verify_inclusion(*inclusion_case(*case))


@settings(max_examples=100, deadline=None)
@given(size_and_index())
def test_tampered_inclusion_proofs_are_rejected(case):
    assert_all_rejected(verify_inclusion, tampered_inclusions(*inclusion_case(*case)))


def test_every_correct_consistency_proof_between_small_trees_is_accepted():
    for n in range(1, EXHAUSTIVE_SIZE + 1):
        for m in range(1, n + 1):
            verify_consistency(*consistency_case(m, n))


def test_every_tampered_consistency_proof_between_small_trees_is_rejected():
    for n in range(2, EXHAUSTIVE_SIZE + 1):
        for m in range(1, n):
            assert_all_rejected(verify_consistency, tampered_consistencies(*consistency_case(m, n)))


@settings(max_examples=100, deadline=None)
@given(two_different_sizes())
def test_correct_consistency_proofs_are_accepted(case):
    verify_consistency(*consistency_case(*case))


@settings(max_examples=100, deadline=None)
@given(two_different_sizes())
def test_tampered_consistency_proofs_are_rejected(case):
    assert_all_rejected(verify_consistency, tampered_consistencies(*consistency_case(*case)))


# --- verify_inclusion: each malformed input has its own message -----------------------------------

GOOD_INCLUSION = inclusion_case(5, 8)


def inclusion_with(**changes):
    m, n, leaf, proof, root = GOOD_INCLUSION
    args = dict(leaf_index=m, tree_size=n, leaf_hash=leaf, proof=proof, root=root) | changes
    return lambda: verify_inclusion(**args)


@pytest.mark.parametrize("call, message", [
    (inclusion_with(leaf_hash=b"\x00" * 31), "the leaf hash must be 32 bytes"),
    (inclusion_with(leaf_hash="00" * 32), "the leaf hash must be 32 bytes"),
    (inclusion_with(root=b"\x00" * 33), "the root hash must be 32 bytes"),
    (inclusion_with(proof=GOOD_INCLUSION[3][:1] + [b"\x00" * 31] + GOOD_INCLUSION[3][2:]), "proof hash 1 must be 32 bytes"),
    (inclusion_with(proof="not a list"), "the proof must be a list of hashes"),
    (inclusion_with(leaf_index=8), "leaf index 8 is out of range for tree size 8"),
    (inclusion_with(leaf_index=0, tree_size=0), "leaf index 0 is out of range for tree size 0"),
    (inclusion_with(leaf_index=-1), "the leaf index must be a non-negative integer"),
    (inclusion_with(leaf_index=True), "the leaf index must be a non-negative integer"),
    (inclusion_with(tree_size=8.0), "the tree size must be a non-negative integer"),
    (inclusion_with(proof=GOOD_INCLUSION[3] + [SOME_HASH]), "the inclusion proof is too long (4 hashes)"),
    (inclusion_with(proof=GOOD_INCLUSION[3][:2]), "the inclusion proof is too short (2 hashes)"),
    (inclusion_with(root=SOME_HASH), "leaf 5 is not included in the tree of size 8: root mismatch"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_inclusion_failure_messages(call, message):
    with pytest.raises(VerificationError, match="^" + re.escape(message)):
        call()


# --- verify_consistency: each malformed input has its own message ---------------------------------

GOOD_CONSISTENCY = consistency_case(6, 8)


def consistency_with(**changes):
    m, n, proof, root1, root2 = GOOD_CONSISTENCY
    args = dict(size1=m, size2=n, proof=proof, root1=root1, root2=root2) | changes
    return lambda: verify_consistency(**args)


@pytest.mark.parametrize("call, message", [
    (consistency_with(root1=b"\x00" * 31), "the first root hash must be 32 bytes"),
    (consistency_with(root2=b""), "the second root hash must be 32 bytes"),
    (consistency_with(proof=[b"\x00" * 32, b"\x00" * 64]), "proof hash 1 must be 32 bytes"),
    (consistency_with(size1=0), "a consistency proof from size 0 is meaningless"),
    (consistency_with(size1=0, size2=0, proof=[]), "a consistency proof from size 0 is meaningless"),
    (consistency_with(size1=9), "the first tree size 9 is larger than the second 8"),
    (consistency_with(size1=-1), "the first tree size must be a non-negative integer"),
    (consistency_with(size2="8"), "the second tree size must be a non-negative integer"),
    (consistency_with(size1=8, root1=mth(0, 8)), "a consistency proof between equal sizes must be empty"),
    (consistency_with(size1=8, proof=[]), "two different roots for the same tree size 8"),
    (consistency_with(proof=[]), "the consistency proof is empty"),
    (consistency_with(proof=GOOD_CONSISTENCY[2] + [SOME_HASH]), "the consistency proof is too long"),
    (consistency_with(proof=GOOD_CONSISTENCY[2][:2]), "the consistency proof is too short"),
    (consistency_with(root1=SOME_HASH), "the proof does not lead to the root of the tree of size 6"),
    (consistency_with(root2=SOME_HASH), "the proof does not lead to the root of the tree of size 8"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_consistency_failure_messages(call, message):
    with pytest.raises(VerificationError, match="^" + re.escape(message)):
        call()


def test_equal_sizes_with_equal_roots_and_no_proof_are_consistent():
    assert verify_consistency(8, 8, [], mth(0, 8), mth(0, 8)) is None


# --- leaf_hash(entry) -------------------------------------------------------------------------------

RFC8785_SAMPLE = json.loads((VECTORS / "jcs" / "rfc8785_sample_input.json").read_text())
RFC8785_SAMPLE_BYTES = bytes.fromhex((VECTORS / "jcs" / "rfc8785_sample_output.hex").read_text())


def test_leaf_hash_is_sha256_of_zero_byte_and_the_rfc8785_bytes():
    assert leaf_hash(RFC8785_SAMPLE) == sha256(b"\x00" + RFC8785_SAMPLE_BYTES)


def test_leaf_hash_does_not_depend_on_key_order():
    entry = {"seq": 41, "time": "2026-11-22T02:15:07.123456Z", "command": {"id": "x", "actor": "a", "ops": []}}
    assert leaf_hash(entry) == leaf_hash(dict(reversed(list(entry.items()))))


@pytest.mark.parametrize("entry, message", [
    ([1, 2, 3], "an entry must be a JSON object"),
    ({"seq": float("nan")}, "the entry cannot be canonicalised"),
    ({"seq": 2**53}, "the entry cannot be canonicalised"),
    ({"seq": "\ud800"}, "the entry cannot be canonicalised"),
    ({1: "non-string key"}, "the entry cannot be canonicalised"),
], ids=["not-an-object", "nan", "integer-beyond-2**53", "lone-surrogate", "non-string-key"])
def test_leaf_hash_rejects_what_jcs_cannot_encode(entry, message):
    with pytest.raises(VerificationError, match=message):
        leaf_hash(entry)


# --- deterministic test keys ------------------------------------------------------------------------
# Fixed seeds keep the tests reproducible (keys whose base64 contains '+' are covered in test_note.py).

def fixed_key(name: str, seed_label: str) -> SigningKey:
    seed = hashlib.sha256(seed_label.encode()).digest()
    return SigningKey(name=name, private_key=Ed25519PrivateKey.from_private_bytes(seed))


ALICE = fixed_key("alice", "ecoledger tests/ledger alice 0")
ALICE_IMPOSTOR = fixed_key("alice", "ecoledger tests/ledger alice-impostor 1")
BOB = fixed_key("bob", "ecoledger tests/ledger bob 2")
ORIGIN = "example.com/behind-the-sofa"
LOG = fixed_key(ORIGIN, "ecoledger tests/ledger log 2")
LOG_ROTATED = fixed_key(ORIGIN, "ecoledger tests/ledger log-rotated 1")
OTHER_LOG = fixed_key("example.com/other-log", "ecoledger tests/ledger other-log 0")
WITNESS = fixed_key("witness.example", "ecoledger tests/ledger witness 0")

C2SP_BODY = (VECTORS / "checkpoint" / "c2sp-example.body").read_text()
C2SP_BODY_WITH_EXTENSIONS = (VECTORS / "checkpoint" / "c2sp-example-with-extensions.body").read_text()
C2SP_ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


# --- open_checkpoint ----------------------------------------------------------------------------------

def test_open_checkpoint_returns_the_signed_tree_head():
    note = sign_note(C2SP_BODY, [LOG])
    checkpoint = open_checkpoint(note, [str(LOG.verifier)])
    assert checkpoint == Checkpoint(origin=ORIGIN, size=20852163, root=C2SP_ROOT)
    assert checkpoint.signed_by == (LOG.verifier,)


def test_open_checkpoint_accepts_bytes():
    note = sign_note(C2SP_BODY, [LOG]).encode()
    assert open_checkpoint(note, [str(LOG.verifier)]).size == 20852163


def test_open_checkpoint_keeps_extension_lines():
    note = sign_note(C2SP_BODY_WITH_EXTENSIONS, [LOG])
    assert open_checkpoint(note, [str(LOG.verifier)]).extensions == ("6086d1a9", "Waxing gibbous")


def test_open_checkpoint_ignores_signatures_by_unknown_keys():
    note = sign_note(C2SP_BODY, [WITNESS, LOG])
    assert open_checkpoint(note, [str(LOG.verifier)]).signed_by == (LOG.verifier,)


def test_open_checkpoint_during_a_key_rotation_reports_both_keys():
    note = sign_note(C2SP_BODY, [LOG, LOG_ROTATED])
    checkpoint = open_checkpoint(note, [str(LOG.verifier), str(LOG_ROTATED.verifier)])
    assert set(checkpoint.signed_by) == {LOG.verifier, LOG_ROTATED.verifier}


def test_open_checkpoint_with_only_the_new_key_accepts_an_overlap_checkpoint():
    note = sign_note(C2SP_BODY, [LOG, LOG_ROTATED])
    assert open_checkpoint(note, [str(LOG_ROTATED.verifier)]).signed_by == (LOG_ROTATED.verifier,)


def test_open_checkpoint_rejects_a_note_signed_by_no_known_key():
    note = sign_note(C2SP_BODY, [LOG_ROTATED])
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_checkpoint(note, [str(LOG.verifier)])


def test_open_checkpoint_rejects_an_empty_list_of_keys():
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_checkpoint(sign_note(C2SP_BODY, [LOG]), [])


def test_open_checkpoint_rejects_a_bad_signature_by_a_known_key():
    note = sign_note(C2SP_BODY, [LOG]).replace("20852163", "20852164")
    with pytest.raises(VerificationError, match="bad signature by key example.com/behind-the-sofa"):
        open_checkpoint(note, [str(LOG.verifier)])


def test_open_checkpoint_rejects_a_bad_signature_even_next_to_a_good_one():
    good = sign_note(C2SP_BODY, [LOG])
    text, signatures = good.split("\n\n")
    forged = sign_note(C2SP_BODY.replace("20852163", "20852164"), [LOG_ROTATED]).split("\n\n")[1]
    with pytest.raises(VerificationError, match="bad signature by key"):
        open_checkpoint(text + "\n\n" + signatures + forged, [str(LOG.verifier), str(LOG_ROTATED.verifier)])


def test_open_checkpoint_rejects_a_checkpoint_signed_only_by_a_key_of_another_name():
    note = sign_note(C2SP_BODY, [OTHER_LOG])
    with pytest.raises(VerificationError, match="signed by a key of another name"):
        open_checkpoint(note, [str(OTHER_LOG.verifier)])


@pytest.mark.parametrize("key", [
    "example.com/behind-the-sofa",
    "example.com/behind-the-sofa+00000000+AAAA",
    "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
], ids=["name-only", "short-key", "empty-name", "wrong-hash", "truncated-base64"])
def test_open_checkpoint_rejects_a_malformed_verifier_key_string(key):
    with pytest.raises(VerificationError, match="malformed verifier key|invalid key name"):
        open_checkpoint(sign_note(C2SP_BODY, [LOG]), [key])


def test_open_checkpoint_rejects_a_single_string_instead_of_a_list_of_keys():
    with pytest.raises(VerificationError, match="verifier_keys must be a list"):
        open_checkpoint(sign_note(C2SP_BODY, [LOG]), str(LOG.verifier))


@pytest.mark.parametrize("note", [
    C2SP_BODY,
    C2SP_BODY + "\n",
    b"\xff" + C2SP_BODY.encode() + b"\n\xe2\x80\x94 x AAAAAAAA\n",
    42,
], ids=["no-signatures", "empty-signature-block", "not-utf8", "not-text"])
def test_open_checkpoint_rejects_a_malformed_note(note):
    with pytest.raises(VerificationError, match="malformed note"):
        open_checkpoint(note, [str(LOG.verifier)])


def signable_malformed_bodies():
    """The malformed checkpoint bodies that can still be the text of a signed note."""
    for path in sorted((VECTORS / "checkpoint" / "malformed").glob("*.body")):
        body = path.read_text()
        if body.endswith("\n") and "\n\n" not in body:
            yield pytest.param(body, id=path.stem)


@pytest.mark.parametrize("body", list(signable_malformed_bodies()))
def test_open_checkpoint_rejects_a_signed_malformed_body(body):
    with pytest.raises(VerificationError, match="malformed checkpoint"):
        open_checkpoint(sign_note(body, [LOG]), [str(LOG.verifier)])


# --- a real signed tree head: sum.golang.org ----------------------------------------------------------

SUMDB_VKEY = (VECTORS / "checkpoint" / "sum.golang.org.vkey").read_text().strip()
SUMDB_NOTE = (VECTORS / "checkpoint" / "sum.golang.org-65209736.note").read_text()


def test_open_checkpoint_checks_a_real_sumdb_checkpoint_against_its_published_key():
    # sum.golang.org's published verifier key has '+' inside its base64. Its signature verifies,
    # but its origin line ("go.sum database tree") differs from its key name, which the log forbids.
    with pytest.raises(VerificationError, match="signed by a key of another name"):
        open_checkpoint(SUMDB_NOTE, [SUMDB_VKEY])


# --- verify_entry_signature -------------------------------------------------------------------------

def signed_entry(key: SigningKey, command: dict, seq: int = 41) -> dict:
    return {
        "seq": seq,
        "time": "2026-11-22T02:15:07.123456Z",
        "command": command,
        "signature": b64encode(key.sign(canonical(command))),
        "key": str(key.verifier),
    }


COMMAND = {"id": "c-0001", "actor": "alice", "ops": [{"op": "transfer", "qty": "12.345", "to": "bob"}]}
GOLDEN_ENTRY = signed_entry(ALICE, COMMAND)


def test_a_golden_entry_is_accepted_and_names_its_key():
    assert verify_entry_signature(GOLDEN_ENTRY) == ALICE.verifier


def test_the_signature_covers_the_canonical_command_not_its_key_order():
    reordered = dict(GOLDEN_ENTRY, command=dict(reversed(list(COMMAND.items()))))
    assert verify_entry_signature(reordered) == ALICE.verifier


def test_a_tampered_command_is_rejected():
    tampered = dict(GOLDEN_ENTRY, command=dict(COMMAND, ops=[dict(COMMAND["ops"][0], qty="123.45")]))
    with pytest.raises(VerificationError, match="entry 41: bad signature by alice"):
        verify_entry_signature(tampered)


def test_a_tampered_signature_is_rejected():
    signature = bytearray(base64.b64decode(GOLDEN_ENTRY["signature"]))
    signature[0] ^= 0x01
    with pytest.raises(VerificationError, match="entry 41: bad signature by alice"):
        verify_entry_signature(dict(GOLDEN_ENTRY, signature=b64encode(bytes(signature))))


def test_a_truncated_signature_is_rejected():
    signature = base64.b64decode(GOLDEN_ENTRY["signature"])[:63]
    with pytest.raises(VerificationError, match="entry 41: bad signature by alice"):
        verify_entry_signature(dict(GOLDEN_ENTRY, signature=b64encode(signature)))


def test_another_principals_key_is_rejected():
    with pytest.raises(VerificationError, match="entry 41: the key 'bob' is not the actor's"):
        verify_entry_signature(dict(GOLDEN_ENTRY, key=str(BOB.verifier)))


def test_another_principal_signing_with_their_own_key_is_rejected():
    with pytest.raises(VerificationError, match="entry 41: the key 'bob' is not the actor's"):
        verify_entry_signature(signed_entry(BOB, COMMAND))


def test_another_key_under_the_actors_name_is_rejected():
    with pytest.raises(VerificationError, match="entry 41: bad signature by alice"):
        verify_entry_signature(dict(GOLDEN_ENTRY, key=str(ALICE_IMPOSTOR.verifier)))


@pytest.mark.parametrize("field", ["command", "signature", "key"])
def test_an_entry_missing_a_field_is_rejected(field):
    entry = {k: v for k, v in GOLDEN_ENTRY.items() if k != field}
    with pytest.raises(VerificationError, match=f"entry 41: missing field {field}"):
        verify_entry_signature(entry)


def test_a_signature_that_is_not_base64_is_rejected():
    with pytest.raises(VerificationError, match="entry 41: the signature is not base64"):
        verify_entry_signature(dict(GOLDEN_ENTRY, signature=GOLDEN_ENTRY["signature"].rstrip("=")))


def test_a_malformed_key_string_is_rejected():
    with pytest.raises(VerificationError, match="malformed verifier key"):
        verify_entry_signature(dict(GOLDEN_ENTRY, key="alice"))


def test_a_command_that_is_not_an_object_is_rejected():
    with pytest.raises(VerificationError, match="entry 41: the command must be a JSON object"):
        verify_entry_signature(dict(GOLDEN_ENTRY, command=["alice"]))


def test_an_entry_that_is_not_an_object_is_rejected():
    with pytest.raises(VerificationError, match="an entry must be a JSON object"):
        verify_entry_signature([GOLDEN_ENTRY])


@pytest.mark.parametrize("value", [2**60, float("nan"), "\ud800"], ids=["integer-beyond-2**53", "nan", "lone-surrogate"])
def test_a_command_jcs_cannot_encode_is_a_verification_error(value):
    entry = dict(GOLDEN_ENTRY, command=dict(COMMAND, extra=value))
    with pytest.raises(VerificationError):
        verify_entry_signature(entry)
