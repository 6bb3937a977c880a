"""Signed commands for tests that only need *some* valid entries in the log."""

from ledger.entry import SignedCommand
from ledger.keys import SigningKey


def signed_command(key: SigningKey, command_id: str, **fields) -> SignedCommand:
    """A command of the key's actor (the key's name) with one harmless op carrying ``fields``."""
    command = {"id": command_id, "actor": key.name, "ops": [{"op": "test.note", **fields}]}
    return SignedCommand.sign(command, key)
