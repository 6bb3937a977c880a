"""C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint).

```
<origin>
<tree size, decimal>
<base64 root hash>
[extension lines]
```
"""

import re
from dataclasses import dataclass, field

from ledger.encoding import b64decode, b64encode
from ledger.errors import VerificationError
from ledger.keys import VerifierKey
from ledger.merkle import HASH_SIZE

_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signed_by: tuple[VerifierKey, ...] = field(default=(), compare=False)

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_body(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise VerificationError("malformed checkpoint: expected origin, size and root hash lines")
    origin, size, root_b64, *extensions = lines[:-1]
    if not origin:
        raise VerificationError("malformed checkpoint: the origin line is empty")
    if not _SIZE.fullmatch(size) or int(size) >= 2**64:
        raise VerificationError(f"malformed checkpoint: tree size {size!r} is not a decimal number below 2^64")
    try:
        root = b64decode(root_b64)
    except ValueError:
        raise VerificationError("malformed checkpoint: the root hash is not base64") from None
    if len(root) != HASH_SIZE:
        raise VerificationError(f"malformed checkpoint: the root hash has {len(root)} bytes, not 32")
    if any(not line for line in extensions):
        raise VerificationError("malformed checkpoint: empty extension line")
    return Checkpoint(origin=origin, size=int(size), root=root, extensions=tuple(extensions))
