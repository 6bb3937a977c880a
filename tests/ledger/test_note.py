"""ledger.note, ledger.keys and ledger.checkpoint against C2SP signed-note / tlog-checkpoint.

Known answers come from the Go reference implementation golang.org/x/mod/sumdb/note
(golang/mod sumdb/note/note_test.go), the C2SP specifications, and real signed tree heads of
sum.golang.org; see vectors/README.md.
"""

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, parse_body
from ledger.errors import VerificationError
from ledger.keys import SigningKey, VerifierKey, key_hash
from ledger.note import open_note, sign_note, split_note

VECTORS = Path(__file__).parent / "vectors"
NOTES = VECTORS / "note"
CHECKPOINTS = VECTORS / "checkpoint"
GO = json.loads((NOTES / "keys.json").read_text())
TEXT = GO["text"]


def read_note(name: str) -> bytes:
    return (NOTES / name).read_bytes()


def peter() -> VerifierKey:
    return VerifierKey.parse(GO["peter_vkey"])


def enoch() -> VerifierKey:
    return VerifierKey.parse(GO["enoch_vkey"])


def go_signer(skey: str) -> tuple[SigningKey, bytes]:
    """Decode PRIVATE+KEY+<name>+<hash>+<base64(0x01 ‖ seed)> as sumdb/note.NewSigner does."""
    private, key, name, hash_hex, encoded = skey.split("+", 4)
    assert (private, key) == ("PRIVATE", "KEY")
    raw = base64.b64decode(encoded, validate=True)
    assert raw[0] == 0x01 and len(raw) == 33
    return SigningKey(name=name, private_key=Ed25519PrivateKey.from_private_bytes(raw[1:])), bytes.fromhex(hash_hex)


def fixed_key(name: str, seed_label: str) -> SigningKey:
    seed = hashlib.sha256(seed_label.encode()).digest()
    return SigningKey(name=name, private_key=Ed25519PrivateKey.from_private_bytes(seed))


# --- verifier keys ---------------------------------------------------------------------------------

def test_go_verifier_key_parses_into_name_and_public_key():
    key = peter()
    assert key.name == "PeterNeumann"
    assert key.public_key == base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]


@pytest.mark.parametrize("vkey, name, expected_hash", [
    ("peter_vkey", "PeterNeumann", "c74f20a3"),
    ("enoch_vkey", "EnochRoot", "af0cfe78"),
])
def test_key_hash_matches_the_go_vectors(vkey, name, expected_hash):
    public_key = base64.b64decode(GO[vkey].split("+", 2)[2])[1:]
    assert key_hash(name, public_key).hex() == expected_hash


@pytest.mark.parametrize("vkey", ["peter_vkey", "enoch_vkey"])
def test_go_verifier_key_string_round_trips(vkey):
    assert str(VerifierKey.parse(GO[vkey])) == GO[vkey]


def test_verifier_key_whose_base64_contains_plus_parses():
    # sum.golang.org's published key (golang/go src/cmd/go/internal/modfetch/key.go).
    vkey = (CHECKPOINTS / "sum.golang.org.vkey").read_text().strip()
    key = VerifierKey.parse(vkey)
    assert (key.name, key.hash.hex()) == ("sum.golang.org", "033de0ae")
    assert str(key) == vkey


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.sampled_from(["alice", "example.com/log", "sum.golang.org"]))
def test_every_verifier_key_string_round_trips(seed, name):
    key = SigningKey(name=name, private_key=Ed25519PrivateKey.from_private_bytes(seed)).verifier
    assert VerifierKey.parse(str(key)) == key


@pytest.mark.parametrize("vkey", list(GO["bad_vkeys"]), ids=list(GO["bad_vkeys"].values()))
def test_go_malformed_verifier_keys_are_rejected(vkey):
    with pytest.raises(VerificationError, match="malformed verifier key"):
        VerifierKey.parse(vkey)


def test_every_proper_substring_of_the_go_verifier_key_is_rejected():
    vkey = GO["peter_vkey"]
    accepted = []
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) == (0, len(vkey)):
                continue
            try:
                VerifierKey.parse(vkey[i:j])
                accepted.append(vkey[i:j])
            except VerificationError:
                pass
    assert accepted == []


def test_every_single_character_change_of_the_go_verifier_key_is_rejected():
    vkey = GO["peter_vkey"]
    accepted = []
    for i in range(len(vkey)):
        changed = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:]
        try:
            VerifierKey.parse(changed)
            accepted.append(changed)
        except VerificationError:
            pass
    assert accepted == []


def test_a_verifier_key_must_be_a_string():
    with pytest.raises(VerificationError, match="a verifier key must be a string"):
        VerifierKey.parse(GO["peter_vkey"].encode())


# --- signing: the Go signer key reproduces the Go signature (Ed25519 is deterministic) ---------------

def test_go_signer_key_derives_the_go_verifier_key():
    signer, expected_hash = go_signer(GO["peter_skey"])
    assert str(signer.verifier) == GO["peter_vkey"]
    assert signer.verifier.hash == expected_hash


def test_sign_note_reproduces_the_go_signed_note_exactly():
    signer, _ = go_signer(GO["peter_skey"])
    assert sign_note(TEXT, [signer]).encode() == read_note("peterneumann.note")


def test_sign_note_refuses_text_without_a_final_newline():
    signer, _ = go_signer(GO["peter_skey"])
    with pytest.raises(VerificationError, match="must end with a newline"):
        sign_note("abc", [signer])


def test_sign_note_refuses_text_with_a_control_character():
    signer, _ = go_signer(GO["peter_skey"])
    with pytest.raises(VerificationError, match="control character"):
        sign_note("a\tb\n", [signer])


def test_sign_note_needs_a_key():
    with pytest.raises(ValueError):
        sign_note(TEXT, [])


def test_a_note_signed_by_several_keys_opens_with_any_of_them():
    alice = fixed_key("alice", "ecoledger tests/ledger alice 0")
    bob = fixed_key("bob", "ecoledger tests/ledger bob 2")
    note = sign_note(TEXT, [alice, bob])
    assert open_note(note, [bob.verifier]) == (TEXT, [bob.verifier])
    assert open_note(note, [alice.verifier, bob.verifier]) == (TEXT, [alice.verifier, bob.verifier])


# --- opening the Go golden notes --------------------------------------------------------------------

def test_golden_note_opens_with_the_go_verifier_key():
    assert open_note(read_note("peterneumann.note"), [peter()]) == (TEXT, [peter()])


def test_golden_note_opens_from_text_as_well_as_bytes():
    assert open_note(read_note("peterneumann.note").decode(), [peter()]) == (TEXT, [peter()])


def test_a_signature_by_an_unknown_key_is_ignored():
    assert open_note(read_note("peterneumann-enochroot.note"), [peter()]) == (TEXT, [peter()])


def test_both_known_signers_are_reported_in_note_order():
    assert open_note(read_note("peterneumann-enochroot.note"), [enoch(), peter()])[1] == [peter(), enoch()]


def test_a_note_with_no_known_signer_is_rejected_naming_its_signers():
    with pytest.raises(VerificationError, match=r"not signed by any known key \(signers: EnochRoot, PeterNeumann\)"):
        open_note(read_note("peterneumann-enochroot.note"), [])


def test_repeated_and_unverifiable_unknown_signatures_are_tolerated():
    # TestOpen "Duplicated verified and unverified signatures" (byte offsets, as in Go).
    peter_sig = "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n".encode()
    enoch_sig = "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n".encode()
    note = (TEXT + "\n").encode() + peter_sig + peter_sig + enoch_sig + enoch_sig + enoch_sig[:60] + b"ABCD" + enoch_sig[60:]
    assert open_note(note, [peter()]) == (TEXT, [peter()])


TAMPERED = {
    "text-changed": "bad signature by key PeterNeumann\\+c74f20a3",
    "signature-byte-flipped": "bad signature by key PeterNeumann\\+c74f20a3",
    "abcd-inserted-in-signature": "bad signature by key PeterNeumann\\+c74f20a3",
    "unknown-key-only": r"not signed by any known key \(signers: EnochRoot\)",
    "wrong-key-hash": r"not signed by any known key \(signers: PeterNeumann\)",
    "missing-final-newline": "malformed note: the signature block must end with a newline",
    "no-signature-block": "malformed note: no blank line before the signatures",
    "blank-line-only": "malformed note: the signature block must end with a newline",
    "name-with-space": "malformed note",
    "unexpected-line": "malformed note: signature line 'Unexpected line.' does not start with",
    "hyphen-instead-of-em-dash": "malformed note: signature line .* does not start with",
    "control-character-in-text": "malformed note: the text contains a control character",
    "not-utf8": "malformed note: not UTF-8",
    "signature-not-base64": "malformed note: the signature of PeterNeumann is not base64",
    "signature-too-short": "malformed note: the signature of PeterNeumann is too short",
    "too-many-signatures": "malformed note: too many signatures",
    # C2SP signed-note: key names MUST NOT contain '+' or spaces, notes MUST NOT contain control
    # characters; the Go reference rejects both as "malformed note" even for unknown signers.
    "unknown-signer-name-with-plus": "malformed note",
    "unknown-signer-name-with-control-character": "malformed note",
}


@pytest.mark.parametrize("name, message", TAMPERED.items(), ids=list(TAMPERED))
def test_tampered_note_is_rejected(name, message):
    with pytest.raises(VerificationError, match=message):
        open_note(read_note(f"tampered/{name}.note"), [peter()])


def test_every_tampered_vector_is_covered():
    assert sorted(p.stem for p in (NOTES / "tampered").glob("*.note")) == sorted(TAMPERED)


@pytest.mark.parametrize("note", [None, 42, ["a list"]], ids=["none", "int", "list"])
def test_a_note_must_be_text(note):
    with pytest.raises(VerificationError, match="malformed note: expected text"):
        open_note(note, [peter()])


# --- C2SP signed-note example: the text may itself contain an empty line ------------------------------

def test_the_last_blank_line_separates_text_from_signatures():
    text, signatures = split_note(read_note("c2sp-quasimodo.note"))
    assert text == "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n"
    (signature,) = signatures
    raw = base64.b64decode("NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=")
    assert (signature.name, signature.key_hash, signature.signature) == ("quasimodo.example/salvatore", raw[:4], raw[4:])


def test_the_c2sp_example_is_not_signed_by_our_keys():
    with pytest.raises(VerificationError, match=r"signers: quasimodo.example/salvatore\)"):
        open_note(read_note("c2sp-quasimodo.note"), [peter()])


# --- real signed tree heads of sum.golang.org ---------------------------------------------------------

SUMDB_KEY_STRING = (CHECKPOINTS / "sum.golang.org.vkey").read_text().strip()


def sumdb_key() -> VerifierKey:
    # Built without VerifierKey.parse so this checks the note code alone.
    _, _, encoded = SUMDB_KEY_STRING.split("+", 2)
    return VerifierKey(name="sum.golang.org", public_key=base64.b64decode(encoded)[1:])


@pytest.mark.parametrize("name, size, root", [
    ("sum.golang.org-65209736.note", 65209736, "5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo="),
    ("sum.golang.org-31700353.note", 31700353, "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs="),
])
def test_a_real_sumdb_signed_tree_head_opens_and_parses(name, size, root):
    text, signed_by = open_note((CHECKPOINTS / name).read_bytes(), [sumdb_key()])
    assert signed_by == [sumdb_key()]
    assert parse_body(text) == Checkpoint(origin="go.sum database tree", size=size, root=base64.b64decode(root))


def test_a_real_sumdb_signed_tree_head_with_a_changed_size_is_rejected():
    note = (CHECKPOINTS / "sum.golang.org-65209736.note").read_text().replace("65209736", "65209737")
    with pytest.raises(VerificationError, match="bad signature by key sum.golang.org"):
        open_note(note, [sumdb_key()])


# --- C2SP tlog-checkpoint bodies ------------------------------------------------------------------------

C2SP_ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_the_c2sp_example_body_parses():
    body = (CHECKPOINTS / "c2sp-example.body").read_text()
    assert parse_body(body) == Checkpoint(origin="example.com/behind-the-sofa", size=20852163, root=C2SP_ROOT)


def test_extension_lines_are_kept_in_order():
    body = (CHECKPOINTS / "c2sp-example-with-extensions.body").read_text()
    assert parse_body(body).extensions == ("6086d1a9", "Waxing gibbous")


@pytest.mark.parametrize("name", ["c2sp-example.body", "c2sp-example-with-extensions.body"])
def test_body_round_trips(name):
    body = (CHECKPOINTS / name).read_text()
    assert parse_body(body).body() == body


def test_an_empty_tree_has_size_zero():
    body = f"example.com/log\n0\n{base64.b64encode(hashlib.sha256(b'').digest()).decode()}\n"
    assert parse_body(body).size == 0


MALFORMED = {
    "size-leading-zero": "malformed checkpoint: tree size '020852163' is not a decimal number",
    "size-negative": "malformed checkpoint: tree size '-34' is not a decimal number",
    "size-plus-sign": "malformed checkpoint: tree size '\\+20852163' is not a decimal number",
    "size-not-a-number": "malformed checkpoint: tree size 'bananas' is not a decimal number",
    "size-with-space": "malformed checkpoint: tree size ' 20852163' is not a decimal number",
    "root-7-bytes": "malformed checkpoint: the root hash has 7 bytes, not 32",
    "root-16-bytes-moon-log": "malformed checkpoint: the root hash has 16 bytes, not 32",
    "root-not-base64": "malformed checkpoint: the root hash is not base64",
    "root-missing-padding": "malformed checkpoint: the root hash is not base64",
    "missing-root-line": "malformed checkpoint: expected origin, size and root hash lines",
    "missing-final-newline": "malformed checkpoint: expected origin, size and root hash lines",
    "empty-origin": "malformed checkpoint: the origin line is empty",
    "empty-extension-line": "malformed checkpoint: empty extension line",
    "trailing-empty-lines": "malformed checkpoint: empty extension line",
}


@pytest.mark.parametrize("name, message", MALFORMED.items(), ids=list(MALFORMED))
def test_malformed_body_is_rejected(name, message):
    with pytest.raises(VerificationError, match=message):
        parse_body((CHECKPOINTS / "malformed" / f"{name}.body").read_text())


def test_every_malformed_body_vector_is_covered():
    assert sorted(p.stem for p in (CHECKPOINTS / "malformed").glob("*.body")) == sorted(MALFORMED)


def test_a_size_in_non_ascii_digits_is_rejected():
    body = (CHECKPOINTS / "c2sp-example.body").read_text().replace("20852163", "\u0662\u0660")
    with pytest.raises(VerificationError, match="is not a decimal number"):
        parse_body(body)
