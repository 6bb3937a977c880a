"""Where an auditor reads a log from: an export bundle on disk, or a running server.

Both give the same things in the same shapes (specs/log.md §4): the latest checkpoint, every
stored checkpoint, the keys, the entries from a seq on, and (bundles, or servers to auditors)
the projections. Neither is trusted: everything read is checked by the auditor's tool.
"""

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.encoding import b64decode
from ledger.errors import VerificationError


class DirectorySource:
    """An export bundle (see :mod:`ledger.export`)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        try:
            self.manifest = json.loads((self.directory / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise VerificationError(f"{self.directory} is not an export bundle: {error}") from None

    def __str__(self) -> str:
        return str(self.directory)

    def _lines(self, name: str) -> Iterator[tuple[int, bytes]]:
        try:
            with (self.directory / name).open("rb") as file:
                yield from enumerate(file, start=1)
        except FileNotFoundError:
            raise VerificationError(f"the bundle has no {name}") from None

    def _objects(self, name: str) -> Iterator[dict[str, Any]]:
        for number, line in self._lines(name):
            try:
                yield json.loads(line)
            except ValueError:
                raise VerificationError(f"{name} line {number} is not JSON") from None

    def _read(self, name: str) -> str:
        try:
            return (self.directory / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise VerificationError(f"the bundle has no {name}") from None
        except (OSError, ValueError) as error:
            raise VerificationError(f"{name} cannot be read: {error}") from None

    def checkpoint(self) -> str:
        return self._read("checkpoint.txt")

    def checkpoints(self) -> Iterator[str]:
        for number, item in enumerate(self._objects("checkpoints.jsonl"), start=1):
            if not isinstance(item, dict) or not isinstance(item.get("note"), str):
                raise VerificationError(f"checkpoints.jsonl line {number} has no note")
            yield item["note"]

    def keys(self) -> dict[str, Any]:
        try:
            return json.loads(self._read("keys.json"))
        except ValueError:
            raise VerificationError("keys.json is not JSON") from None

    def entries(self, start: int = 0) -> Iterator[dict[str, Any]]:
        """Entry ``n`` is line ``n + 1``: a line that is not JSON (a stored entry whose bytes were
        changed) is named by the seq it should hold."""
        for number, line in self._lines("entries.jsonl"):
            if number <= start:
                continue
            try:
                yield json.loads(line)
            except ValueError:
                raise VerificationError(f"entry {number - 1}: not JSON (entries.jsonl line {number})",
                                        seq=number - 1) from None

    def projection(self, table: str) -> Iterator[dict[str, Any]]:
        return self._objects(f"projections/{table}.jsonl")

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        return None


class HttpSource:
    """A running ledger, read over its public log endpoints (and, with an auditor's token,
    the projections' export)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60):
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise VerificationError(f"{url} is not an http(s) URL")
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __str__(self) -> str:
        return self.url

    def _open(self, path: str, **params: Any):
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        request = urllib.request.Request(self.url + path + query)
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raise VerificationError(f"{self.url}{path}: HTTP {error.code}") from None
        except (urllib.error.URLError, TimeoutError) as error:
            raise VerificationError(f"{self.url} cannot be reached: {error}") from None

    def _get(self, path: str, **params: Any) -> bytes:
        with self._open(path, **params) as answer:
            return answer.read()

    def _json(self, path: str, **params: Any) -> Any:
        try:
            return json.loads(self._get(path, **params))
        except ValueError:
            raise VerificationError(f"{self.url}{path}: the answer is not JSON") from None

    def _pages(self, path: str, items: str, start: int, **params: Any) -> Iterator[Any]:
        """Follow a paginated listing (``{items: [...], "next": seq | null}``) from ``start``."""
        following: int | None = start
        while following is not None:
            page = self._json(path, start=following, **params)
            if not isinstance(page, dict) or not isinstance(page.get(items), list):
                raise VerificationError(f"{self.url}{path}: the answer has no {items}")
            yield from page[items]
            following = page.get("next")

    def checkpoint(self) -> str:
        try:
            return self._get("/v1/log/checkpoint").decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError(f"{self.url}/v1/log/checkpoint: the answer is not UTF-8") from None

    def checkpoints(self) -> Iterator[str]:
        for item in self._pages("/v1/log/checkpoints", "checkpoints", 0):
            if not isinstance(item, dict) or not isinstance(item.get("note"), str):
                raise VerificationError(f"{self.url}/v1/log/checkpoints: a checkpoint without its note")
            yield item["note"]

    def keys(self) -> dict[str, Any]:
        return self._json("/v1/log/keys")

    def entries(self, start: int = 0) -> Iterator[dict[str, Any]]:
        yield from self._pages("/v1/log/entries", "entries", start, limit=1000)

    def projection(self, table: str) -> Iterator[dict[str, Any]] | None:
        """The table's rows streamed line by line; None without an auditor's token."""
        if not self._token:
            return None
        return self._stream(f"/v1/export/projections/{table}")

    def _stream(self, path: str) -> Iterator[dict[str, Any]]:
        with self._open(path) as answer:
            for number, line in enumerate(answer, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise VerificationError(f"{self.url}{path}: line {number} is not JSON") from None

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        answer = self._json("/v1/log/proofs/consistency", first=first, second=second)
        try:
            return [b64decode(h) for h in answer["hashes"]]
        except (KeyError, TypeError, ValueError):
            raise VerificationError(f"{self.url}/v1/log/proofs/consistency: not a list of base64 hashes") from None
