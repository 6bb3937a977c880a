"""Inclusion receipts (ledger/receipt.py): C2SP tlog-proof with the entry as its extra data.

A golden receipt is built from fixed keys and entries (Ed25519 and JCS are deterministic, so its
bytes are too), with the tree's root and proof computed by a naive transcription of RFC 9162
§2.1 — not by ``ledger.merkle`` — and every tampered variant is checked side by side with it:
each must raise ``VerificationError`` with a message that says what is wrong.
"""

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint
from ledger.encoding import b64encode, canonical
from ledger.entry import SignedCommand
from ledger.errors import LogError, VerificationError
from ledger.export import key_registry
from ledger.keys import SigningKey
from ledger.note import sign_note
from ledger.receipt import HEADER, make_receipt, make_store_receipt, open_receipt
from support.commands import signed_command

ORIGIN = "ecoledger.test/log"
OTHER_ORIGIN = "other.test/log"
SIZE = 7
INDEX = 5
GOLDEN_SHA256 = "5ed2a35e19a9698ad0c241d08d0044f31bac01f01ae5b59c2d038dee5127711c"


def fixed_key(name: str, seed: int) -> SigningKey:
    return SigningKey(name=name, private_key=Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


LOG_KEY = fixed_key(ORIGIN, 1)
OTHER_LOG_KEY = fixed_key(OTHER_ORIGIN, 2)
ACTOR_KEY = fixed_key("sc-exchange", 3)


def entry(seq: int) -> dict:
    command = {"id": f"golden-{seq}", "actor": "sc-exchange",
               "ops": [{"op": "cny.deposit", "account": "SC:ENT:91510113MA6CQB2K45", "amount": f"{seq + 1}000.00",
                        "memo": "川渝 golden"}]}
    signed = SignedCommand.sign(command, ACTOR_KEY)
    return {"seq": seq, "time": f"2026-11-22T02:15:0{seq}.123456Z", "command": command,
            "signature": signed.signature, "key": str(ACTOR_KEY.verifier)}


ENTRIES = [entry(seq) for seq in range(SIZE)]
LEAVES = [canonical(e) for e in ENTRIES]


# -- RFC 9162 §2.1, naively -------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


ROOT = mth(LEAVES)
PROOF = path(INDEX, LEAVES)


def checkpoint(*, origin: str = ORIGIN, size: int = SIZE, root: bytes = ROOT, keys=(LOG_KEY,)) -> str:
    return sign_note(Checkpoint(origin=origin, size=size, root=root).body(), list(keys))


CHECKPOINT = checkpoint()
GOLDEN = make_receipt(leaf=LEAVES[INDEX], index=INDEX, proof=PROOF, checkpoint=CHECKPOINT)
TRUSTED = [str(LOG_KEY.verifier)]


def lines_of(receipt: str) -> tuple[list[str], str]:
    head, _, note = receipt.partition("\n\n")
    return head.split("\n"), note


def with_lines(lines: list[str], note: str = CHECKPOINT) -> str:
    return "\n".join(lines) + "\n\n" + note


def flip(data: bytes, position: int = 0, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1:]


# -- the golden receipt -----------------------------------------------------------------------------


def test_the_golden_receipt_is_the_c2sp_tlog_proof_format():
    expected = (f"{HEADER}\n"
                f"extra {base64.b64encode(LEAVES[INDEX]).decode()}\n"
                f"index {INDEX}\n"
                + "".join(base64.b64encode(h).decode() + "\n" for h in PROOF)
                + "\n" + CHECKPOINT)
    assert GOLDEN == expected
    assert HEADER == "c2sp.org/tlog-proof@v1"
    assert len(PROOF) == 3  # index 5 of 7: siblings 4, [6], [0..4)


def test_the_golden_receipt_is_byte_for_byte_stable():
    """Fixed keys and entries give the same receipt on every machine (Ed25519 and JCS are
    deterministic): a change here is a change of the external format."""
    assert hashlib.sha256(GOLDEN.encode()).hexdigest() == GOLDEN_SHA256


def test_the_golden_receipt_opens_to_its_entry_and_checkpoint():
    opened, cp = open_receipt(GOLDEN, TRUSTED)
    assert opened == ENTRIES[INDEX]
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, SIZE, ROOT)
    assert [str(k) for k in cp.signed_by] == TRUSTED
    assert open_receipt(GOLDEN.encode(), TRUSTED)[0] == ENTRIES[INDEX]  # bytes too


@pytest.mark.parametrize("index", range(SIZE))
def test_every_entry_has_a_receipt(index):
    receipt = make_receipt(leaf=LEAVES[index], index=index, proof=path(index, LEAVES), checkpoint=CHECKPOINT)
    assert open_receipt(receipt, TRUSTED)[0] == ENTRIES[index]


def test_a_receipt_of_a_one_entry_tree_has_no_proof_hashes():
    receipt = make_receipt(leaf=LEAVES[0], index=0, proof=[], checkpoint=checkpoint(size=1, root=mth(LEAVES[:1])))
    lines, _ = lines_of(receipt)
    assert lines == [HEADER, f"extra {b64encode(LEAVES[0])}", "index 0"]
    assert open_receipt(receipt, TRUSTED)[0] == ENTRIES[0]


def test_signatures_by_unknown_keys_are_ignored():
    both = checkpoint(keys=(OTHER_LOG_KEY, LOG_KEY))  # another key's line is skipped, not an error
    receipt = make_receipt(leaf=LEAVES[INDEX], index=INDEX, proof=PROOF, checkpoint=both)
    assert open_receipt(receipt, TRUSTED)[1].size == SIZE


# -- tampered receipts, side by side with the golden one -----------------------------------------------


def _tampered():
    lines, note = lines_of(GOLDEN)
    extra = LEAVES[INDEX]
    amount = extra.index(b'"amount":"') + 10

    def entry_as(seq: int) -> str:
        return f"extra {b64encode(canonical({**ENTRIES[INDEX], 'seq': seq}))}"

    yield ("a wrong index", with_lines([lines[0], lines[1], "index 4", *lines[3:]]),
           "the receipt's entry is not entry 4")
    yield ("a wrong index, and the entry's seq changed to match", with_lines([lines[0], entry_as(4), "index 4", *lines[3:]]),
           "leaf 4 is not included in the tree of size 7: root mismatch")
    yield ("an index beyond the tree", with_lines([lines[0], entry_as(9), "index 9", *lines[3:]]),
           "leaf index 9 is out of range for tree size 7")
    for i in range(len(PROOF)):
        hashes = [b64encode(flip(h, 31, 0x80)) if n == i else b64encode(h) for n, h in enumerate(PROOF)]
        yield (f"proof hash {i} flipped", with_lines([*lines[:3], *hashes]),
               "leaf 5 is not included in the tree of size 7: root mismatch")
    yield ("a proof hash dropped", with_lines(lines[:-1]), r"the inclusion proof is too short \(2 hashes\)")
    yield ("a proof hash added", with_lines([*lines, b64encode(sha256(b"x"))]), r"the inclusion proof is too long \(4 hashes\)")
    yield ("a proof hash of 31 bytes", with_lines([*lines[:4], b64encode(PROOF[1][:31]), *lines[5:]]),
           "proof hash 1 must be 32 bytes")
    yield ("a flipped byte of the entry's amount", with_lines([lines[0], f"extra {b64encode(flip(extra, amount))}", *lines[2:]]),
           "leaf 5 is not included in the tree of size 7: root mismatch")
    yield ("a flipped byte of the entry's signature",
           with_lines([lines[0], f"extra {b64encode(flip(extra, extra.index(b'signature') + 20))}", *lines[2:]]),
           "leaf 5 is not included in the tree of size 7: root mismatch")
    yield ("an entry that is not JSON", with_lines([lines[0], f"extra {b64encode(extra[:-1])}", *lines[2:]]),
           "^malformed receipt: .*Expecting")
    yield ("an entry that is not an object", with_lines([lines[0], f"extra {b64encode(b'[5]')}", *lines[2:]]),
           "the receipt's entry is not entry 5")
    yield ("the extra line missing", with_lines([lines[0], *lines[2:]]),
           r"^malformed receipt: it carries no entry \(the extra line\)$")
    yield ("only a header", with_lines([lines[0]]), r"^malformed receipt: it carries no entry \(the extra line\)$")
    yield ("an extra line that is not base64", with_lines([lines[0], "extra not*base64", *lines[2:]]),
           "^malformed receipt: .*not valid base64")
    for header in ("c2sp.org/tlog-proof@v2", "c2sp.org/tlog-proof", "", "C2SP.ORG/TLOG-PROOF@V1", HEADER + " "):
        yield (f"header {header!r}", with_lines([header, *lines[1:]]),
               "^malformed receipt: the first line must be c2sp.org/tlog-proof@v1$")
    for index in ("05", "-5", "+5", "five", "", " 5", "5 ", "٥"):
        yield (f"index line {('index ' + index)!r}", with_lines([lines[0], lines[1], f"index {index}", *lines[3:]]),
               "^malformed receipt: the index line must be 'index <decimal>'$")
    yield ("the index line missing", with_lines([lines[0], lines[1], *lines[3:]]),
           "^malformed receipt: the index line must be 'index <decimal>'$")
    # without its own blank line, the receipt runs on into the checkpoint's lines, read as proof hashes
    yield ("no blank line before the checkpoint", "\n".join(lines) + "\n" + note, "^malformed receipt: .*not valid base64")
    yield ("no checkpoint at all", "\n".join(lines) + "\n", "^malformed receipt: no blank line before the checkpoint$")
    yield ("no checkpoint", "\n".join(lines) + "\n\n", "^malformed note: no blank line before the signatures$")
    yield ("a checkpoint of another root, signature kept",
           with_lines(lines, note.replace(b64encode(ROOT), b64encode(sha256(b"another root")))),
           r"^bad signature by key ecoledger\.test/log\+[0-9a-f]{8}$")
    yield ("a checkpoint of another log, signed by its own key", with_lines(lines, checkpoint(origin=OTHER_ORIGIN, keys=(OTHER_LOG_KEY,))),
           r"^the note is not signed by any known key \(signers: other\.test/log\)$")
    yield ("a checkpoint of another origin, signed by the log's key", with_lines(lines, checkpoint(origin=OTHER_ORIGIN)),
           "^the checkpoint of origin 'other.test/log' is signed by a key of another name$")
    yield ("a checkpoint of a smaller tree", with_lines(lines, checkpoint(size=6, root=mth(LEAVES[:6]))),
           r"^the inclusion proof is too long \(3 hashes\)$")
    yield ("a checkpoint of a larger tree", with_lines(lines, checkpoint(size=8, root=mth([*LEAVES, b"x"]))),
           "leaf 5 is not included in the tree of size 8")


TAMPERED = list(_tampered())


@pytest.mark.parametrize("receipt, message", [pytest.param(r, m, id=name) for name, r, m in TAMPERED])
def test_a_tampered_receipt_is_refused_with_a_precise_message(receipt, message):
    assert open_receipt(GOLDEN, TRUSTED)[0] == ENTRIES[INDEX]  # side by side: the golden one holds
    with pytest.raises(VerificationError, match=message):
        open_receipt(receipt, TRUSTED)


def test_an_unknown_key_is_refused():
    stranger = str(fixed_key(ORIGIN, 9).verifier)  # same name, another key
    with pytest.raises(VerificationError, match=r"^the note is not signed by any known key \(signers: ecoledger\.test/log\)$"):
        open_receipt(GOLDEN, [stranger])


def test_receipt_bytes_that_are_not_utf8_are_refused():
    with pytest.raises(VerificationError, match="^malformed receipt: not UTF-8$"):
        open_receipt(GOLDEN.encode().replace(b"index", b"ind\xffx"), TRUSTED)


def test_a_receipt_of_another_log_opens_only_with_that_logs_key_and_says_so():
    """Trust is the keys given: a receipt of another log verifies with *its* key, and the
    checkpoint returned names its origin — the caller (and verify-receipt's output) must look."""
    other = make_receipt(leaf=LEAVES[INDEX], index=INDEX, proof=PROOF,
                         checkpoint=checkpoint(origin=OTHER_ORIGIN, keys=(OTHER_LOG_KEY,)))
    with pytest.raises(VerificationError, match="not signed by any known key"):
        open_receipt(other, TRUSTED)
    assert open_receipt(other, [*TRUSTED, str(OTHER_LOG_KEY.verifier)])[1].origin == OTHER_ORIGIN


@pytest.mark.parametrize("bad_line, named", [(3, "proof hash 0"), (1, "extra")])
def test_a_malformed_line_is_named(bad_line, named):
    lines, _ = lines_of(GOLDEN)
    lines[bad_line] = lines[bad_line][:-2] + "*="
    with pytest.raises(VerificationError, match=named):
        open_receipt(with_lines(lines), TRUSTED)


# -- receipts from a store, on every engine -----------------------------------------------------------


def test_store_receipts_verify_for_every_entry(store):
    author = SigningKey.generate("receipt-author")
    with store.writer() as writer:
        for n in range(12):
            writer.append(signed_command(author, f"r{n}", n=n))
    with store.reader() as session:
        log_key = key_registry(session)["log"]
    size = store.size()
    for seq in range(size):
        opened, cp = open_receipt(make_store_receipt(store, seq), [log_key])
        assert opened["seq"] == seq and cp.size == size
        assert canonical(opened) == store.entry(seq).leaf
    with pytest.raises(LogError):
        make_store_receipt(store, size)
    # a receipt stays valid after the log grows: it names its own checkpoint
    old = make_store_receipt(store, 3)
    with store.writer() as writer:
        writer.append(signed_command(author, "later"))
    assert open_receipt(old, [log_key])[1].size == size
    assert open_receipt(make_store_receipt(store, 3), [log_key])[1].size == size + 1
    assert json.loads(base64.b64decode(lines_of(old)[0][1][6:]))["seq"] == 3
