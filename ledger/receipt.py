"""Inclusion receipts: one entry proven into a signed checkpoint, checkable offline.

The format is C2SP tlog-proof (https://c2sp.org/tlog-proof) with the entry itself, JCS-encoded,
as its ``extra`` data. The extra data is not trusted: its hash must be the leaf the proof leads
from, so a receipt checks with nothing but the log's verifier key::

    c2sp.org/tlog-proof@v1
    extra <base64(JCS(entry))>
    index <seq>
    <base64 proof hash>
    ...

    <the checkpoint, verbatim>
"""

import json
from collections.abc import Sequence

from ledger.checkpoint import Checkpoint, parse_body
from ledger.encoding import b64decode, b64encode
from ledger.errors import VerificationError
from ledger.note import split_note
from ledger.verify import leaf_hash, open_checkpoint, verify_inclusion

HEADER = "c2sp.org/tlog-proof@v1"


def make_receipt(*, leaf: bytes, index: int, proof: Sequence[bytes], checkpoint: str) -> str:
    lines = [HEADER, f"extra {b64encode(leaf)}", f"index {index}", *(b64encode(h) for h in proof)]
    return "\n".join(lines) + "\n\n" + checkpoint


def make_store_receipt(store, seq: int) -> str:
    """A receipt for entry ``seq`` in the log's latest checkpoint."""
    checkpoint = store.checkpoint()
    size = parse_body(split_note(checkpoint)[0]).size
    proof = store.inclusion_proof(seq, size)
    return make_receipt(leaf=store.entry(seq).leaf, index=seq, proof=proof, checkpoint=checkpoint)


def open_receipt(text: str | bytes, verifier_keys: list[str]) -> tuple[dict, Checkpoint]:
    """Check a receipt against the log's verifier keys; return the entry and the checkpoint."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("malformed receipt: not UTF-8") from None
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise VerificationError("malformed receipt: no blank line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise VerificationError(f"malformed receipt: the first line must be {HEADER}")
    if len(lines) < 3 or not lines[1].startswith("extra "):
        raise VerificationError("malformed receipt: it carries no entry (the extra line)")
    if not lines[2].startswith("index ") or not _decimal(lines[2][6:]):
        raise VerificationError("malformed receipt: the index line must be 'index <decimal>'")
    index = int(lines[2][6:])
    entry_bytes = _base64(lines[1][6:], "the extra line (the entry)")
    proof = [_base64(line, f"proof hash {n}") for n, line in enumerate(lines[3:])]
    try:
        entry = json.loads(entry_bytes)
    except ValueError as error:
        raise VerificationError(f"malformed receipt: the entry in the extra line is not JSON: {error}") from None
    checkpoint = open_checkpoint(note, verifier_keys)
    if not isinstance(entry, dict) or entry.get("seq") != index:
        raise VerificationError(f"the receipt's entry is not entry {index}")
    verify_inclusion(index, checkpoint.size, leaf_hash(entry), proof, checkpoint.root)
    return entry, checkpoint


def _base64(text: str, what: str) -> bytes:
    try:
        return b64decode(text)
    except ValueError as error:
        raise VerificationError(f"malformed receipt: {what}: {error}") from None


def _decimal(text: str) -> bool:
    return text == "0" or (text.isascii() and text.isdigit() and not text.startswith("0"))
