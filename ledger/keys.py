"""Ed25519 keys in the C2SP signed-note format, and the PEM files that hold them.

A *verifier key string* is ``<name>+<key hash, 8 hex digits>+<base64(0x01 ‖ public key)>``
where the key hash is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
"""

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.encoding import b64decode, b64encode
from ledger.errors import VerificationError

ED25519_ALGORITHM = 0x01
_NAME = re.compile(r"[^\s+]+")


def check_key_name(name: str) -> str:
    """Key names are non-empty and contain no whitespace and no '+' (C2SP signed-note)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or not name.isprintable():
        raise VerificationError(f"invalid key name {name!r}: it must be non-empty, with no spaces or '+'")
    return name


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519_ALGORITHM]) + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A named Ed25519 public key that checks signatures."""

    name: str
    public_key: bytes

    @property
    def hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def __str__(self) -> str:
        encoded = b64encode(bytes([ED25519_ALGORITHM]) + self.public_key)
        return f"{self.name}+{self.hash.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> "VerifierKey":
        """Parse a verifier key string; raises VerificationError if it is malformed."""
        if not isinstance(text, str):
            raise VerificationError("a verifier key must be a string")
        parts = text.split("+", 2)  # the base64 key may itself contain "+"
        if len(parts) != 3:
            raise VerificationError(f"malformed verifier key {text!r}: expected name+hash+key")
        name, hash_hex, encoded = parts
        check_key_name(name)
        try:
            raw = b64decode(encoded)
        except ValueError:
            raise VerificationError(f"malformed verifier key {text!r}: the key is not base64") from None
        if len(raw) != 33 or raw[0] != ED25519_ALGORITHM:
            raise VerificationError(f"malformed verifier key {text!r}: not an Ed25519 key")
        key = cls(name=name, public_key=raw[1:])
        if hash_hex != key.hash.hex():
            raise VerificationError(f"malformed verifier key {text!r}: the key hash does not match")
        return key

    def verify(self, signature: bytes, message: bytes) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise VerificationError(f"bad signature by key {self.name}+{self.hash.hex()}") from None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A named Ed25519 private key. Its ``repr`` never shows the secret."""

    name: str
    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, verifier={self.verifier!s})"

    @property
    def verifier(self) -> VerifierKey:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifierKey(name=self.name, public_key=public)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    @classmethod
    def generate(cls, name: str) -> "SigningKey":
        return cls(name=check_key_name(name), private_key=Ed25519PrivateKey.generate())


def write_private_key(path: Path, key: Ed25519PrivateKey, *, passphrase: bytes | None = None) -> None:
    """Write a PKCS#8 PEM file readable by its owner only; refuse to overwrite one."""
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)


def read_private_key(path: Path, *, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Read a PKCS#8 PEM Ed25519 key; raises ValueError with a message that names the file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase or None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the private key in {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return key
