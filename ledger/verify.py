"""The auditor's verifier: check entries, proofs and checkpoints without trusting the server.

Every function raises :class:`VerificationError` with a precise message when something does
not hold, malformed input included; none returns a boolean. Only ``cryptography`` and
``rfc8785`` are needed: nothing here touches storage or the web.
"""

from collections.abc import Sequence

from ledger.checkpoint import Checkpoint, parse_body
from ledger.encoding import b64decode, canonical
from ledger.entry import LEDGER_ACTOR
from ledger.errors import VerificationError
from ledger.keys import VerifierKey
from ledger.merkle import HASH_SIZE, leaf_hash as _leaf_hash, node_hash
from ledger.note import open_note

__all__ = [
    "Checkpoint",
    "VerificationError",
    "leaf_hash",
    "open_checkpoint",
    "verify_consistency",
    "verify_entry_signature",
    "verify_inclusion",
]


def leaf_hash(entry: dict) -> bytes:
    """SHA-256(0x00 ‖ JCS(entry)): the entry's leaf hash in the log's Merkle tree."""
    if not isinstance(entry, dict):
        raise VerificationError("an entry must be a JSON object")
    try:
        return _leaf_hash(canonical(entry))
    except Exception as exc:  # rfc8785 raises several types for values JSON cannot carry
        raise VerificationError(f"the entry cannot be canonicalised: {exc}") from None


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise VerificationError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(value)


def _check_size(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"{what} must be a non-negative integer")
    return value


def _check_proof(proof: object) -> list[bytes]:
    if not isinstance(proof, list | tuple):
        raise VerificationError("the proof must be a list of hashes")
    return [_check_hash(h, f"proof hash {i}") for i, h in enumerate(proof)]


def _lsb(n: int) -> bool:
    return bool(n & 1)


def verify_inclusion(leaf_index: int, tree_size: int, leaf_hash: bytes,
                     proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: check that ``leaf_hash`` is at ``leaf_index`` in the tree with ``root``."""
    index = _check_size(leaf_index, "the leaf index")
    size = _check_size(tree_size, "the tree size")
    digest = _check_hash(leaf_hash, "the leaf hash")
    root = _check_hash(root, "the root hash")
    proof = _check_proof(proof)
    if index >= size:
        raise VerificationError(f"leaf index {index} is out of range for tree size {size}")
    fn, sn, r = index, size - 1, digest
    for p in proof:
        if sn == 0:
            raise VerificationError(f"the inclusion proof is too long ({len(proof)} hashes)")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError(f"the inclusion proof is too short ({len(proof)} hashes)")
    if r != root:
        raise VerificationError(f"leaf {index} is not included in the tree of size {size}: root mismatch")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes],
                       root1: bytes, root2: bytes) -> None:
    """RFC 9162 §2.1.4.2: check that the tree of ``size2`` extends the tree of ``size1``."""
    size1 = _check_size(size1, "the first tree size")
    size2 = _check_size(size2, "the second tree size")
    root1 = _check_hash(root1, "the first root hash")
    root2 = _check_hash(root2, "the second root hash")
    proof = _check_proof(proof)
    if size1 == 0:
        raise VerificationError("a consistency proof from size 0 is meaningless")
    if size1 > size2:
        raise VerificationError(f"the first tree size {size1} is larger than the second {size2}")
    if size1 == size2:
        if proof:
            raise VerificationError("a consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise VerificationError(f"two different roots for the same tree size {size1}")
        return
    if not proof:
        raise VerificationError("the consistency proof is empty")
    if size1 & (size1 - 1) == 0:
        proof = [root1, *proof]
    fn, sn = size1 - 1, size2 - 1
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise VerificationError("the consistency proof is too long")
        if _lsb(fn) or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("the consistency proof is too short")
    if fr != root1:
        raise VerificationError(f"the proof does not lead to the root of the tree of size {size1}")
    if sr != root2:
        raise VerificationError(f"the proof does not lead to the root of the tree of size {size2}")


def open_checkpoint(note: bytes | str, verifier_keys: list[str]) -> Checkpoint:
    """Check a signed checkpoint against the verifier keys the auditor trusts, and parse it.

    Signatures by other keys are ignored; the note must be signed by at least one known key, and
    every known key's signature on it must verify.
    """
    if isinstance(verifier_keys, str) or not isinstance(verifier_keys, list | tuple):
        raise VerificationError("verifier_keys must be a list of verifier key strings")
    keys = [VerifierKey.parse(k) for k in verifier_keys]
    text, signed_by = open_note(note, keys)
    checkpoint = parse_body(text)
    if any(key.name != checkpoint.origin for key in signed_by):
        raise VerificationError(f"the checkpoint of origin {checkpoint.origin!r} is signed by a key of another name")
    return Checkpoint(origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root,
                      extensions=checkpoint.extensions, signed_by=tuple(signed_by))


def verify_entry_signature(entry: dict) -> VerifierKey:
    """Check an entry's actor signature over JCS(command) with the key the entry names.

    Returns that key, so the caller can check that it was the actor's key at the entry's seq (for
    the ledger's own entries, actor ``ledger``, a log key named after the origin).
    """
    if not isinstance(entry, dict):
        raise VerificationError("an entry must be a JSON object")
    seq = entry.get("seq")
    try:
        command = entry["command"]
        key = VerifierKey.parse(entry["key"])
        signature = b64decode(entry["signature"])
    except KeyError as exc:
        raise VerificationError(f"entry {seq}: missing field {exc.args[0]}") from None
    except ValueError:
        raise VerificationError(f"entry {seq}: the signature is not base64") from None
    if not isinstance(command, dict):
        raise VerificationError(f"entry {seq}: the command must be a JSON object")
    if command.get("actor") not in (key.name, LEDGER_ACTOR):
        raise VerificationError(f"entry {seq}: the key {key.name!r} is not the actor's")
    try:
        message = canonical(command)
    except ValueError as error:
        raise VerificationError(f"entry {seq}: the command cannot be canonicalised: {error}") from None
    try:
        key.verify(signature, message)
    except VerificationError:
        raise VerificationError(f"entry {seq}: bad signature by {key.name}") from None
    return key
