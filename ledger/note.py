"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures.

A note is UTF-8 text ending in a newline, then a blank line, then one line per signature:
``— <key name> <base64(4-byte key hash ‖ signature)>``. Verifiers ignore signatures by keys
they do not know, which is what lets a log rotate its key with an overlap.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.encoding import b64decode, b64encode
from ledger.errors import VerificationError
from ledger.keys import SigningKey, VerifierKey

SIGNATURE_PREFIX = "\u2014 "
MAX_SIGNATURES = 100


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes


def check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise VerificationError("malformed note: the text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise VerificationError("malformed note: the text contains a control character")


def sign_note(text: str, keys: Iterable[SigningKey]) -> str:
    """Sign note text with each key; the result is the whole note."""
    check_text(text)
    message = text.encode()
    lines = []
    for key in keys:
        blob = b64encode(key.verifier.hash + key.sign(message))
        lines.append(f"{SIGNATURE_PREFIX}{key.name} {blob}\n")
    if not lines:
        raise ValueError("a note needs at least one signing key")
    return text + "\n" + "".join(lines)


def split_note(note: bytes | str) -> tuple[str, list[Signature]]:
    """Split a note into its text and signature lines, checking only the syntax."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("malformed note: not UTF-8") from None
    if not isinstance(note, str):
        raise VerificationError("malformed note: expected text")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2:]
    check_text(text)
    if not block.endswith("\n"):
        raise VerificationError("malformed note: the signature block must end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise VerificationError(f"malformed note: signature line {line!r} does not start with '— '")
        name, space, blob = line[len(SIGNATURE_PREFIX):].partition(" ")
        if not space or not name or " " in blob:
            raise VerificationError(f"malformed note: signature line {line!r} is not '— name signature'")
        if "+" in name or not name.isprintable():
            raise VerificationError(f"malformed note: the key name {name!r} has '+' or a control character")
        try:
            raw = b64decode(blob)
        except ValueError:
            raise VerificationError(f"malformed note: the signature of {name} is not base64") from None
        if len(raw) < 5:
            raise VerificationError(f"malformed note: the signature of {name} is too short")
        signatures.append(Signature(name=name, key_hash=raw[:4], signature=raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise VerificationError("malformed note: too many signatures")
    return text, signatures


def open_note(note: bytes | str, keys: Sequence[VerifierKey]) -> tuple[str, list[VerifierKey]]:
    """Check a note's signatures; return its text and the known keys that signed it.

    Signatures by unknown keys are ignored; a signature by a known key that does not verify is
    an error, and so is a note that no known key signed.
    """
    text, signatures = split_note(note)
    known = {(key.name, key.hash): key for key in keys}
    signed_by = []
    for signature in signatures:
        key = known.get((signature.name, signature.key_hash))
        if key is None:
            continue
        key.verify(signature.signature, text.encode())
        if key not in signed_by:
            signed_by.append(key)
    if not signed_by:
        names = ", ".join(sorted({s.name for s in signatures})) or "none"
        raise VerificationError(f"the note is not signed by any known key (signers: {names})")
    return text, signed_by
