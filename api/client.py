"""A small client for the ledger's HTTP API, with nothing but the standard library's urllib.

::

    from api.client import Client, load_key

    client = Client("http://127.0.0.1:8000", token=token, name="sc-exchange",
                    key=load_key(home / "keys/principals/sc-exchange.pem", "sc-exchange"))
    outcome = client.submit([{"op": "cny.deposit", "account": "SC:ENT:…", "amount": "1000.00"}])
    for entry in client.entries():
        ...

Commands are signed here: Ed25519 over the RFC 8785 (JCS) encoding of the command object. A
refusal raises :class:`ClientError` carrying the problem's ``code``, ``detail`` and ``op``.
The token and the private key never appear in a message or a ``repr``; redirects are not
followed, so the token is only ever sent to ``base_url``.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ledger.encoding import b64encode, canonical
from ledger.keys import SigningKey, read_private_key, write_private_key

DEFAULT_TIMEOUT = 30.0
TOKEN_ENV = "ECOLEDGER_TOKEN"
_PROBLEM_DETAIL_LIMIT = 500


class ClientError(Exception):
    """The server refused a request (``status`` is its HTTP status) or could not be reached
    (``status`` is None). ``problem`` is the RFC 9457 body, or one made up from what came back."""

    def __init__(self, status: int | None, problem: Mapping[str, Any]):
        self.status = status
        self.problem = dict(problem)
        self.code = str(self.problem.get("code") or (f"HTTP_{status}" if status else "UNREACHABLE"))
        self.detail = str(self.problem.get("detail") or self.problem.get("title") or "")
        op = self.problem.get("op")
        self.op = op if isinstance(op, int) and not isinstance(op, bool) else None
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One line: ``CODE: detail (op N)``."""
        text = f"{self.code}: {self.detail}" if self.detail else self.code
        if self.op is not None:
            text += f" (op {self.op})"
        return " ".join(text.split())

    def __repr__(self) -> str:
        return f"ClientError(status={self.status!r}, code={self.code!r}, op={self.op!r})"


# -- keys ------------------------------------------------------------------------------------


def principal_key_path(home: Path, name: str) -> Path:
    """Where the command line keeps a principal's private key: ``<home>/keys/principals/<name>.pem``."""
    return Path(home) / "keys" / "principals" / f"{name}.pem"


def load_key(path: Path, name: str, *, passphrase: bytes | None = None) -> SigningKey:
    """A principal's signing key from a PKCS#8 PEM file; ``name`` is the principal's name."""
    return SigningKey(name=name, private_key=read_private_key(Path(path), passphrase=passphrase))


def create_key(path: Path, name: str) -> SigningKey:
    """Generate a key for ``name`` and write it to ``path`` (mode 0600); never overwrites a file."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists already; it is not overwritten")
    key = SigningKey.generate(name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_key(path, key.private_key)
    return key


def sign_command(key: SigningKey, command: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope ``POST /v1/commands`` takes: the command and its signature over JCS(command)."""
    command = dict(command)
    return {"command": command, "signature": b64encode(key.sign(canonical(command)))}


def new_command_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex}"


# -- the client ------------------------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is for an API client: the bearer token must not
    follow it to another address."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _public_url(url: str) -> str:
    """``url`` without any user:password part, for messages."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Client:
    """A principal talking to the ledger at ``base_url`` (e.g. ``http://127.0.0.1:8000``)."""

    def __init__(self, base_url: str, *, token: str | None, name: str, key: SigningKey | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the ledger's URL must be http:// or https://, not {_public_url(base_url)!r}")
        if key is not None and key.name != name:
            raise ValueError(f"the key is named {key.name!r}, not {name!r}")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.key = key
        self.timeout = timeout
        self._token = token
        self._opener = urllib.request.build_opener(_NoRedirects())

    def __repr__(self) -> str:
        key = str(self.key.verifier) if self.key else None
        return f"Client({_public_url(self.base_url)!r}, name={self.name!r}, key={key!r})"

    # -- writing ---------------------------------------------------------------------------

    def command(self, ops: Iterable[Mapping[str, Any]], *, command_id: str | None = None) -> dict[str, Any]:
        """A command of this principal: ``{"id", "actor", "ops"}``."""
        return {"id": command_id or new_command_id(self.name), "actor": self.name, "ops": list(ops)}

    def sign(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """The signed envelope of ``command`` (its ``actor`` must be this principal)."""
        if self.key is None:
            raise ValueError(f"no signing key for {self.name}: pass key= to sign commands")
        if command.get("actor") != self.name:
            raise ValueError(f"the command's actor is {command.get('actor')!r}; {self.name} signs its own only")
        return sign_command(self.key, command)

    def submit(self, ops: Iterable[Mapping[str, Any]], *, command_id: str | None = None) -> dict[str, Any]:
        """Sign and submit one command; answers ``{"seq", "leaf_hash", "entry", "results"}``
        (the original answer again when the same command was appended before)."""
        _, body = self._request("POST", "/v1/commands", body=self.sign(self.command(ops, command_id=command_id)))
        return body

    def submit_batch(self, commands: Iterable[Any]) -> list[dict[str, Any]]:
        """Sign and submit several commands in one transaction. Each item is a list of ops or a
        command object ``{"id"?, "ops"}``. Answers ``[{"status", "body"}, …]`` in order: each
        command succeeds or is refused on its own."""
        envelopes = []
        for item in commands:
            if isinstance(item, Mapping):
                if set(item) - {"id", "actor", "ops"}:
                    raise ValueError("a command object has only id, actor and ops")
                command = self.command(item["ops"], command_id=item.get("id"))
                command["actor"] = item.get("actor", self.name)
            else:
                command = self.command(item)
            envelopes.append(self.sign(command))
        _, body = self._request("POST", "/v1/commands/batch", body={"commands": envelopes})
        return body["results"]

    # -- reading ---------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with query ``params`` (None values left out); the decoded JSON."""
        _, body = self._request("GET", path, params=params)
        return body

    def pages(self, path: str, **params: Any) -> Iterator[Any]:
        """Every item of a paginated list, following ``next`` cursors page after page."""
        cursor = params.pop("cursor", None)
        while True:
            page = self.get(path, **params, cursor=cursor)
            yield from page["items"]
            following = page.get("next")
            if following is None:
                return
            if following == cursor:
                raise ClientError(None, {"code": "BAD_PAGINATION",
                                         "detail": f"{path} answered the same cursor again"})
            cursor = following

    def entries(self, start: int = 0, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The log's entries from ``start`` on, ``{"seq", "leaf_hash", "entry"}`` each."""
        while start is not None:
            page = self.get("/v1/log/entries", start=start, limit=limit)
            yield from page["entries"]
            following = page.get("next")
            if following is not None and following <= start:
                raise ClientError(None, {"code": "BAD_PAGINATION",
                                         "detail": f"/v1/log/entries went back from {start} to {following}"})
            start = following

    # -- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                 body: Any = None) -> tuple[int, Any]:
        if not path.startswith("/"):
            path = "/" + path
        url = self.base_url + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        headers = {"Accept": "application/json, application/problem+json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        where = f"{method} {_public_url(self.base_url)}{path}"
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, _decode(response.read(), response.status, where)
        except urllib.error.HTTPError as error:
            with error:
                raw = error.read()
            raise ClientError(error.code, _problem(raw, error.code, where)) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ClientError(None, {"code": "UNREACHABLE", "detail": f"{where}: {reason}"}) from None


def _decode(raw: bytes, status: int, where: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ClientError(status, {"code": "BAD_RESPONSE", "detail": f"{where} did not answer JSON"}) from None


def _problem(raw: bytes, status: int, where: str) -> dict[str, Any]:
    try:
        problem = json.loads(raw)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return problem
    text = raw.decode("utf-8", "replace").strip()[:_PROBLEM_DETAIL_LIMIT]
    return {"code": f"HTTP_{status}", "detail": f"{where}: {text or 'no body'}"}


def token_from_env() -> str | None:
    return os.environ.get(TOKEN_ENV) or None
