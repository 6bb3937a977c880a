"""Checkpoints served by the real server verify with the *standard* C2SP signed-note verifier.

The standard is Go's reference implementation, golang.org/x/mod/sumdb/note, driven by the small
program in ``notecheck/`` (which also runs RFC 6962 proofs through golang.org/x/mod/sumdb/tlog).
The same checkpoints, entries and proofs are checked with the project's own ``ledger.verify``.

Needs Go and the Go sources of golang.org/x/mod; on Debian::

    apt-get install -y golang-go golang-golang-x-mod-dev

The program is built offline in GOPATH mode (``GO111MODULE=off``, ``GOPATH=/usr/share/gocode``,
or the ``GOPATH`` of the environment if it holds golang.org/x/mod). Without them these tests skip.
"""

import base64
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.keys import VerifierKey
from ledger.verify import (VerificationError, leaf_hash, open_checkpoint, verify_consistency,
                           verify_inclusion)
from support.server import LedgerServer

pytestmark = pytest.mark.slow

ORIGIN = "ecoledger.test/log"
NOTECHECK_SOURCE = Path(__file__).parent / "notecheck"
NOTE_PACKAGE = Path("src/golang.org/x/mod/sumdb/note")
DEBIAN_GOPATH = "/usr/share/gocode"
GO_TIMEOUT = 30


# -- the Go program ----------------------------------------------------------------------------


def _gopath() -> str | None:
    """The first GOPATH entry holding golang.org/x/mod/sumdb/note: the environment's, then Debian's."""
    candidates = [*os.environ.get("GOPATH", "").split(os.pathsep), DEBIAN_GOPATH]
    return next((p for p in candidates if p and (Path(p) / NOTE_PACKAGE).is_dir()), None)


@pytest.fixture(scope="module")
def notecheck(tmp_path_factory) -> Path:
    """The notecheck program, built once for the module (offline, GOPATH mode)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed: `apt-get install golang-go golang-golang-x-mod-dev` "
                    "to check checkpoints with Go's reference signed-note verifier")
    gopath = _gopath()
    if gopath is None:
        pytest.skip(f"golang.org/x/mod is missing ({DEBIAN_GOPATH}/{NOTE_PACKAGE} not found): "
                    "`apt-get install golang-golang-x-mod-dev`")
    workdir = tmp_path_factory.mktemp("notecheck")
    binary = workdir / "notecheck"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": gopath, "GOCACHE": str(workdir / "gocache"),
           "GOFLAGS": "", "CGO_ENABLED": "0"}
    result = subprocess.run([go, "build", "-o", str(binary), "."], cwd=NOTECHECK_SOURCE, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"building notecheck failed:\n{result.stdout}{result.stderr}"
    return binary


@dataclass(frozen=True)
class GoResult:
    status: int
    stdout: str
    stderr: str

    @property
    def verified(self) -> list[str]:
        """``name+hash`` of every signature Go verified."""
        return [line.removeprefix("verified ") for line in self.stdout.splitlines()
                if line.startswith("verified ")]

    def field(self, name: str) -> str:
        """A ``<name> <value>`` line of the checkpoint as Go parsed it."""
        values = [line.partition(" ")[2] for line in self.stdout.splitlines()
                  if line.startswith(name + " ")]
        assert len(values) == 1, f"no single {name!r} line in notecheck's output:\n{self.stdout}"
        return values[-1]


def go_open(binary: Path, note: bytes, *keys: str) -> GoResult:
    """note.Open(note, VerifierList(NewVerifier(key)...)) in Go."""
    result = subprocess.run([str(binary), *keys], input=note, capture_output=True, timeout=GO_TIMEOUT)
    return GoResult(result.returncode, result.stdout.decode(), result.stderr.decode())


def go_check(binary: Path, mode: str, *args: object) -> GoResult:
    """tlog.CheckRecord (``-inclusion``) or tlog.CheckTree (``-consistency``) in Go."""
    result = subprocess.run([str(binary), mode, *map(str, args)], capture_output=True, text=True,
                            timeout=GO_TIMEOUT)
    return GoResult(result.returncode, result.stdout, result.stderr)


# -- the server --------------------------------------------------------------------------------


@pytest.fixture
def server(database_url, tmp_path):
    """``ecoledger serve`` with 2 workers on the database under test, with a fresh home."""
    ledger = LedgerServer.start(home=tmp_path / "home", database_url=database_url, origin=ORIGIN, workers=2)
    try:
        yield ledger
    finally:
        ledger.stop()
        # Shown by pytest only when the test fails.
        print(ledger.output())


# -- helpers -----------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def key_id(verifier_key: str) -> str:
    """``name+hash`` of a verifier key string, as Go prints a signer (base64 may hold '+' too)."""
    name, hash_hex, _ = verifier_key.split("+", 2)
    return f"{name}+{hash_hex}"


def note_text(note: bytes) -> str:
    return note[: note.rindex(b"\n\n") + 1].decode()


def fetch_checkpoint(server: LedgerServer) -> bytes:
    response = server.get("/v1/log/checkpoint")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return response.content


def fetch_keys(server: LedgerServer) -> dict:
    return server.get("/v1/log/keys").json()


def other_key(name: str) -> str:
    """A verifier key of the same name but a key pair the log never had."""
    public = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return str(VerifierKey(name=name, public_key=public))


def tamper_root(note: bytes) -> bytes:
    """The note with one character of the root hash line changed (still valid base64)."""
    lines = note.split(b"\n")
    root = lines[2]
    lines[2] = (b"B" if root[:1] == b"A" else b"A") + root[1:]
    assert len(base64.b64decode(lines[2])) == 32
    return b"\n".join(lines)


def flip_signature_byte(note: bytes, index: int = 0) -> bytes:
    """The note with one bit flipped in the Ed25519 signature (not the key hash) of signature line ``index``."""
    text, _, block = note.rpartition(b"\n\n")
    lines = block.split(b"\n")
    prefix, _, blob = lines[index].rpartition(b" ")
    raw = bytearray(unb64(blob.decode()))
    raw[4 + 10] ^= 0x01  # 4-byte key hash, then the signature
    lines[index] = prefix + b" " + b64(bytes(raw)).encode()
    return text + b"\n\n" + b"\n".join(lines)


def python_error(note: bytes, *keys: str) -> str | None:
    """ledger.verify's refusal of the note, or None if it accepts it."""
    try:
        open_checkpoint(note, list(keys))
    except VerificationError as error:
        return str(error)
    return None


def check_go_accepts(binary: Path, note: bytes, *keys: str) -> GoResult:
    result = go_open(binary, note, *keys)
    assert result.status == 0, f"Go's note.Open refused the checkpoint: {result.stderr}\n{note.decode()}"
    assert result.stdout.startswith(note_text(note))
    assert sorted(result.verified) == sorted(key_id(k) for k in keys)
    return result


# -- the tests ---------------------------------------------------------------------------------


def test_go_reference_verifier_accepts_the_checkpoint_and_refuses_tampered_ones(server, notecheck):
    note = fetch_checkpoint(server)
    key = fetch_keys(server)["log"]

    golden = check_go_accepts(notecheck, note, key)
    checkpoint = open_checkpoint(note, [key])
    assert [str(k) for k in checkpoint.signed_by] == [key]
    assert golden.field("origin") == checkpoint.origin == ORIGIN
    assert int(golden.field("size")) == checkpoint.size >= 1
    assert bytes.fromhex(golden.field("root")) == checkpoint.root

    # Golden and tampered side by side: (case, note, keys, Go's expected error).
    name_hash = key_id(key)
    stranger = other_key(ORIGIN)
    cases = [
        ("golden", note, [key], None),
        ("root line changed", tamper_root(note), [key], f"invalid signature for key {name_hash}"),
        ("signature bit flipped", flip_signature_byte(note), [key], f"invalid signature for key {name_hash}"),
        ("another key", note, [stranger], "note has no verifiable signatures"),
    ]
    outcomes = []
    for case, variant, keys, expected in cases:
        go = go_open(notecheck, variant, *keys)
        outcomes.append((case, go.status, go.stderr.strip(), python_error(variant, *keys), expected))
    report = "\n".join(f"{case:22} go: status {status} {stderr!r:70} python: {py!r}"
                       for case, status, stderr, py, _ in outcomes)
    for case, status, stderr, py_error, expected in outcomes:
        if expected is None:
            assert status == 0 and py_error is None, f"{case} must verify:\n{report}"
        else:
            assert status == 1 and expected in stderr, f"{case}: Go must refuse with {expected!r}:\n{report}"
            assert py_error is not None, f"{case}: ledger.verify must refuse it too:\n{report}"


def test_checkpoint_entry_and_inclusion_proof_verify_with_ledger_verify(server, notecheck):
    note = fetch_checkpoint(server)
    key = fetch_keys(server)["log"]
    checkpoint = open_checkpoint(note, [key])
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 1)  # the genesis entry alone

    body = server.get("/v1/log/entries/0").json()
    assert body["seq"] == body["entry"]["seq"] == 0
    digest = leaf_hash(body["entry"])
    assert digest == unb64(body["leaf_hash"])

    proof = server.get("/v1/log/proofs/inclusion", params={"seq": 0}).json()
    assert (proof["seq"], proof["tree_size"]) == (0, checkpoint.size)
    hashes = [unb64(h) for h in proof["hashes"]]
    verify_inclusion(0, checkpoint.size, digest, hashes, checkpoint.root)
    go = go_check(notecheck, "-inclusion", 0, checkpoint.size, b64(digest), b64(checkpoint.root),
                  *proof["hashes"])
    assert go.status == 0, go.stderr

    # Not vacuous: another leaf does not prove into that root.
    forged = leaf_hash({**body["entry"], "time": "2000-01-01T00:00:00.000000Z"})
    with pytest.raises(VerificationError):
        verify_inclusion(0, checkpoint.size, forged, hashes, checkpoint.root)
    assert go_check(notecheck, "-inclusion", 0, checkpoint.size, b64(forged), b64(checkpoint.root),
                    *proof["hashes"]).status == 1


def test_checkpoints_across_a_key_rotation_verify_with_either_key(server, notecheck):
    old_note = fetch_checkpoint(server)
    old_key = fetch_keys(server)["log"]
    old = open_checkpoint(old_note, [old_key])

    server.cli("log-key", "rotate")

    new_note = fetch_checkpoint(server)
    keys = fetch_keys(server)
    new_key = keys["log"]
    assert new_key != old_key and old_key in keys["previous"], keys
    new = open_checkpoint(new_note, [old_key])
    assert new.size == old.size + 1 and new.root != old.root

    # Go: the old key alone, the new key alone, and both.
    check_go_accepts(notecheck, new_note, old_key)
    check_go_accepts(notecheck, new_note, new_key)
    check_go_accepts(notecheck, new_note, old_key, new_key)
    assert [str(k) for k in open_checkpoint(new_note, [new_key]).signed_by] == [new_key]

    # The rotation entry names the new key and is in the new tree.
    body = server.get(f"/v1/log/entries/{old.size}").json()
    assert body["entry"]["command"]["ops"][0]["key"] == new_key
    digest = leaf_hash(body["entry"])
    assert digest == unb64(body["leaf_hash"])
    inclusion = server.get("/v1/log/proofs/inclusion", params={"seq": old.size}).json()
    assert inclusion["tree_size"] == new.size
    verify_inclusion(old.size, new.size, digest, [unb64(h) for h in inclusion["hashes"]], new.root)

    # The new tree extends the old one.
    proof = server.get("/v1/log/proofs/consistency",
                       params={"first": old.size, "second": new.size}).json()
    assert (proof["first"], proof["second"]) == (old.size, new.size)
    verify_consistency(old.size, new.size, [unb64(h) for h in proof["hashes"]], old.root, new.root)
    go = go_check(notecheck, "-consistency", old.size, new.size, b64(old.root), b64(new.root),
                  *proof["hashes"])
    assert go.status == 0, go.stderr
    with pytest.raises(VerificationError):
        verify_consistency(old.size, new.size, [unb64(h) for h in proof["hashes"]], new.root, new.root)


def test_every_proof_of_a_growing_log_verifies_in_python_and_go(server, notecheck):
    """Seven entries (genesis and six rotations): every inclusion and consistency proof between
    every checkpoint seen, checked by ledger.verify and by Go's tlog."""
    first_key = fetch_keys(server)["log"]
    roots = {}
    with server.open_store() as store:  # appending in-process: much faster than six CLI runs
        while True:
            note = fetch_checkpoint(server)
            newest = fetch_keys(server)["log"]
            check_go_accepts(notecheck, note, first_key)
            if newest != first_key:
                check_go_accepts(notecheck, note, newest)
            checkpoint = open_checkpoint(note, [first_key, newest])
            roots[checkpoint.size] = checkpoint.root
            if checkpoint.size >= 7:
                break
            store.rotate_key()
    assert sorted(roots) == list(range(1, 8))

    page = server.get("/v1/log/entries", params={"start": 0, "limit": 100}).json()
    assert page["next"] is None and [e["seq"] for e in page["entries"]] == list(range(7))
    leaves = []
    for item in page["entries"]:
        digest = leaf_hash(item["entry"])
        assert digest == unb64(item["leaf_hash"]), f"entry {item['seq']}: served leaf hash differs"
        leaves.append(digest)

    failures = []
    for size, root in roots.items():
        for seq in range(size):
            hashes = server.get("/v1/log/proofs/inclusion", params={"seq": seq, "size": size}).json()["hashes"]
            try:
                verify_inclusion(seq, size, leaves[seq], [unb64(h) for h in hashes], root)
            except VerificationError as error:
                failures.append(f"inclusion {seq} in {size}, python: {error}")
            go = go_check(notecheck, "-inclusion", seq, size, b64(leaves[seq]), b64(root), *hashes)
            if go.status != 0:
                failures.append(f"inclusion {seq} in {size}, go: {go.stderr.strip()}")
        for first in range(1, size):
            hashes = server.get("/v1/log/proofs/consistency",
                                params={"first": first, "second": size}).json()["hashes"]
            try:
                verify_consistency(first, size, [unb64(h) for h in hashes], roots[first], root)
            except VerificationError as error:
                failures.append(f"consistency {first} to {size}, python: {error}")
            go = go_check(notecheck, "-consistency", first, size, b64(roots[first]), b64(root), *hashes)
            if go.status != 0:
                failures.append(f"consistency {first} to {size}, go: {go.stderr.strip()}")
    assert not failures, "\n".join(failures)
