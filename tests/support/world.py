"""A ledger "world" for end-to-end tests: a running server, principals with keys and tokens,
signed commands over HTTP, and reads of the state they produced.

Typical use in a module::

    from support.world import ENGINES, running_world

    @pytest.fixture(scope="module", params=ENGINES)
    def world(request, tmp_path_factory):
        with running_world(request.param, tmp_path_factory.mktemp("ops")) as world:
            yield world

    def test_something(world):
        response = world.submit("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "10.00"})
        assert response.status_code == 201
        assert world.balance(SC_A, "CNY")["total"] == 1000

What it does, and how:

* **The server** is the real ``ecoledger serve`` under gunicorn (:class:`support.server.LedgerServer`),
  one per module and engine: starting gunicorn costs seconds.
* **Principals** are created with the ``ecoledger principal add NAME --role ROLE [--province P]
  [--instrument CODE ...] --json`` command, which prints ``{name, role, province, token,
  private_key_path, verifier_key}``. :meth:`World.add_principal` runs the real console script in
  a subprocess by default; :meth:`World.standard` invokes the same click command in this process
  (``in_process=True``, on the server's settings), since a fresh interpreter per principal costs
  seconds on a busy machine (``admin_by_subprocess=True`` makes the admin go through the script).
* **Commands** are signed with the principal's Ed25519 key over RFC 8785 JCS(command) and sent
  as ``POST /v1/commands`` with the principal's bearer token. :meth:`World.submit` returns the
  raw :class:`requests.Response`; :meth:`World.ok` and :meth:`World.refused` assert the outcome
  (a refusal must also leave the log's size unchanged).
* **State** is read from the contracts' projection tables through an in-process
  :class:`ledger.store.LogStore` on the same database (:meth:`World.balance`, :meth:`World.rows`,
  :meth:`World.get`), from the registry reads over HTTP (:meth:`World.read`,
  :meth:`World.registry_balances`), and the log through the HTTP log endpoints
  (:meth:`World.entries`, :meth:`World.checkpoint`; :meth:`World.log_size` reads the database,
  which is cheaper than serving and signing a checkpoint for every check).
* **Restarts**: :meth:`World.restart` stops the server and starts another on the same home and
  database; :func:`running_world` stops whichever server the world ends on.

:func:`World.standard` builds the usual two-province cast (see :data:`CAST`), opens enterprise
accounts with valid 统一社会信用代码 (USCC, GB 32100-2015 check character) and, unless told
otherwise, defines one asset of every instrument and funds the enterprises.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from support.server import LedgerServer

TEST_DATABASE_URL = os.environ.get("ECOLEDGER_TEST_DATABASE_URL")
ORIGIN = "ecoledger.test/log"

ENGINES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not TEST_DATABASE_URL,
        reason="PostgreSQL not under test: set ECOLEDGER_TEST_DATABASE_URL "
               "(e.g. postgresql://postgres@127.0.0.1:5432/test)")),
]
"""Parameters for a module- or class-scoped fixture: each engine under test."""


# -- identifiers ---------------------------------------------------------------------------------


def uscc(first17: str) -> str:
    """A 统一社会信用代码 with these 17 characters and the check character GB 32100-2015 gives."""
    from contracts.uscc import check_character

    assert len(first17) == 17, first17
    return first17 + check_character(first17)


USCC_PREFIX = {"SC": "91510100MA6C", "CQ": "91500000MA5U", "GZ": "91520100MA6D"}
"""The first 12 characters of the test enterprises' USCCs: 5101 is Chengdu, 5000 Chongqing, 5201 Guiyang
(a third province, for the rules that must not assume two)."""


def enterprise(province: str, number: int) -> str:
    """``SC:ENT:<USCC>`` of the ``number``-th test enterprise of a province (0 ≤ number < 10⁵)."""
    return f"{province}:ENT:{uscc(f'{USCC_PREFIX[province]}{number:05d}')}"


# The standard cast's accounts.
SC_A, SC_B, SC_C, SC_D = (enterprise("SC", n) for n in (1, 2, 3, 4))
CQ_A, CQ_B = (enterprise("CQ", n) for n in (1, 2))
SC_P = "SC:IND:p-0001"
CQ_P = "CQ:IND:p-0001"
SC_EXC, CQ_EXC = "SC:EXC:sc-exchange", "CQ:EXC:cq-exchange"
SC_ENTERPRISES = (SC_A, SC_B, SC_C, SC_D)
CQ_ENTERPRISES = (CQ_A, CQ_B)

# The standard assets, by the attributes :func:`World.standard` defines them with.
PDR_SC = "PDR-SC-COD-20250101-20291231"
PDR_CQ = "PDR-CQ-COD-20250101-20291231"
EUR_SC = "EUR-SC-2025"
WR_SC = "WR-SC-minjiang-withdrawal-20250101-20341231"
CHTF = "CHTF-cdcer-001-metro-2024"
CQCER = "CQCER-cqcer-002-forest-2024"
CNY = "CNY"

ASSET_DEFINITIONS: dict[str, tuple[str, dict]] = {
    # asset id: (issuer, asset.define op)
    PDR_SC: ("sc-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}}),
    EUR_SC: ("sc-sthj", {"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2025}}),
    WR_SC: ("sc-slt", {"op": "asset.define", "instrument": "WR", "attributes": {
        "right_type": "withdrawal", "basin": "minjiang", "term_start": "2025-01-01", "term_end": "2034-12-31"}}),
    CHTF: ("cd-sthj", {"op": "asset.define", "instrument": "CHTF", "attributes": {
        "methodology": "cdcer", "project": "001-metro", "vintage": 2024}}),
    PDR_CQ: ("cq-sthj", {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}}),
    CQCER: ("cq-thc", {"op": "asset.define", "instrument": "CQCER", "attributes": {
        "methodology": "cqcer", "project": "002-forest", "vintage": 2024}}),
}
DECIMALS = {"PDR": 3, "WR": 0, "EUR": 3, "CHTF": 0, "CQCER": 0, "CNY": 2}


def decimals_of(asset: str) -> int:
    return DECIMALS[asset.split("-", 1)[0]]


def units(quantity: str, decimals: int) -> int:
    """``"1.5"`` with 3 decimals → 1500, exactly (a test's hand computation, not the code's)."""
    whole, _, fraction = quantity.partition(".")
    assert len(fraction) <= decimals, (quantity, decimals)
    return int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or 0)


@dataclass(frozen=True)
class Member:
    """A member of the cast: ``principal add`` arguments."""

    name: str
    role: str
    province: str | None = None
    instruments: tuple[str, ...] = ()


CAST: tuple[Member, ...] = (
    Member("admin", "admin"),
    Member("sc-sthj", "issuer", "SC", ("PDR", "EUR")),   # 四川省生态环境厅
    Member("sc-slt", "issuer", "SC", ("WR",)),           # 四川省水利厅
    Member("cd-sthj", "issuer", "SC", ("CHTF",)),        # 成都市生态环境局 (碳惠天府)
    Member("cq-sthj", "issuer", "CQ", ("PDR",)),         # 重庆市生态环境局
    Member("cq-thc", "issuer", "CQ", ("CQCER",)),        # 碳惠通
    Member("sc-exchange", "operator", "SC"),              # 四川联合环境交易所
    Member("cq-exchange", "operator", "CQ"),              # 重庆联合产权交易所
    Member("sc-finance", "finance", "SC"),
    Member("cq-finance", "finance", "CQ"),
    Member("sc-monitor", "monitor", "SC"),
    Member("cq-monitor", "monitor", "CQ"),
    Member("auditor", "auditor"),
)
OPERATOR_OF = {"SC": "sc-exchange", "CQ": "cq-exchange", "GZ": "gz-exchange"}


# -- principals ----------------------------------------------------------------------------------


@dataclass
class Principal:
    """A principal as the world knows it: its token and its current signing key."""

    name: str
    role: str
    province: str | None
    token: str
    key: Any  # ledger.keys.SigningKey
    private_key_path: Path | None = None
    instruments: tuple[str, ...] = ()

    @property
    def verifier(self) -> str:
        return str(self.key.verifier)

    def private_pem(self) -> bytes:
        """The current signing key as unencrypted PKCS#8 PEM (to hand to another process)."""
        from cryptography.hazmat.primitives import serialization

        return self.key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption())

    @property
    def home_account(self) -> str | None:
        kind = {"issuer": "ISS", "operator": "EXC", "finance": "FIN"}.get(self.role)
        if kind is None:
            return None
        return f"{self.province}:{kind}:{'treasury' if kind == 'FIN' else self.name}"

    def __repr__(self) -> str:  # never the token
        return f"Principal({self.name!r}, {self.role!r}, {self.province!r})"


def signing_key(name: str, path: Path):
    from ledger.keys import SigningKey, read_private_key

    return SigningKey(name=name, private_key=read_private_key(Path(path)))


def principal_add_args(member: Member) -> list[str]:
    args = ["principal", "add", member.name, "--role", member.role]
    if member.province:
        args += ["--province", member.province]
    for code in member.instruments:
        args += ["--instrument", code]
    return [*args, "--json"]


# -- the world -----------------------------------------------------------------------------------


class World:
    """Principals, signed commands over HTTP and reads, on one running ledger."""

    def __init__(self, server: LedgerServer, *, workers: int = 2, engine: str | None = None):
        self.server = server
        self.workers = workers
        self.engine = engine
        """"sqlite" or "postgresql" when :func:`running_world` made it."""
        self.http = requests.Session()
        self.principals: dict[str, Principal] = {}
        self._ids = itertools.count(1)
        self._accounts = itertools.count(100)
        self._run = secrets.token_hex(3)
        self._store = None
        self._app = None

    # -- the server ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    def rebind(self, server: LedgerServer) -> None:
        """Use another server on the same home and database (after a restart)."""
        self.server = server
        self.http.close()
        self.http = requests.Session()

    def restart(self) -> LedgerServer:
        """Stop the server and start a new one on the same home, database and origin (another
        port, new worker processes); the world uses it from then on."""
        env = self.server.env
        self.server.stop()
        print(self.server.output())
        server = LedgerServer.start(home=Path(env["ECOLEDGER_HOME"]), database_url=env["ECOLEDGER_DATABASE_URL"],
                                    origin=env["ECOLEDGER_ORIGIN"], workers=self.workers)
        self.rebind(server)
        return server

    def close(self) -> None:
        self.http.close()
        if self._store is not None:
            self._store.engine.dispose()
            self._store = None
        if self._app is not None:
            from api.storage import get_store

            with self._app.app_context():
                get_store().engine.dispose()
            self._app = None

    # -- principals -----------------------------------------------------------------------------

    def add_principal(self, name: str, role: str, province: str | None = None,
                      instruments: tuple[str, ...] | list[str] = (), *, in_process: bool = False) -> Principal:
        """``ecoledger principal add … --json``: register a principal, keep its token and key."""
        member = Member(name, role, province, tuple(instruments))
        args = principal_add_args(member)
        output = self.cli_in_process(args) if in_process else self.server.cli(*args)
        data = json.loads(output)
        assert data["name"] == name and data["role"] == role and data.get("province") == province, data
        path = Path(data["private_key_path"]).resolve()
        key = signing_key(name, path)
        assert str(key.verifier) == data["verifier_key"], "the private key file is not the key registered"
        principal = Principal(name=name, role=role, province=province, token=data["token"], key=key,
                              private_key_path=path, instruments=tuple(instruments))
        self.principals[name] = principal
        return principal

    def cli_in_process(self, args: list[str]) -> str:
        """Run an ``ecoledger`` click command in this process, on the server's settings (home,
        database, origin); returns its stdout, fails the test if it exits non-zero."""
        from click.testing import CliRunner
        from flask.cli import ScriptInfo

        from api import create_app
        from api.cli import cli

        if self._app is None:
            env = self.server.env
            self._app = create_app({"home": env["ECOLEDGER_HOME"], "database_url": env["ECOLEDGER_DATABASE_URL"],
                                    "origin": env["ECOLEDGER_ORIGIN"]})
        app = self._app
        result = CliRunner().invoke(cli, args, obj=ScriptInfo(create_app=lambda: app, load_dotenv_defaults=False),
                                    catch_exceptions=False)
        assert result.exit_code == 0, f"ecoledger {' '.join(args)} failed ({result.exit_code}):\n{result.output}"
        return result.stdout

    def adopt(self, name: str, role: str, province: str | None, key, *, instruments=()) -> Principal:
        """Give the world a principal added over HTTP (``principal.add`` by the admin): its
        signing key is ``key``; its API token is minted with ``ecoledger principal token NAME``."""
        token = self.cli_in_process(["principal", "token", name]).strip()
        principal = Principal(name=name, role=role, province=province, token=token, key=key,
                              instruments=tuple(instruments))
        self.principals[name] = principal
        return principal

    def rotate_key(self, name: str, *, by: str | None = None) -> dict:
        """``principal.rotate_key`` of ``name`` by ``by`` (default: itself) to a fresh key; the
        world signs for ``name`` with the new key from then on. Returns the answer."""
        from ledger.keys import SigningKey

        new = SigningKey.generate(name)
        answer = self.ok(by or name, {"op": "principal.rotate_key", "name": name, "key": str(new.verifier)})
        self.principals[name].key = new
        return answer

    def __getitem__(self, name: str) -> Principal:
        return self.principals[name]

    def operator(self, province: str) -> Principal:
        return self.principals[OPERATOR_OF[province]]

    # -- commands -------------------------------------------------------------------------------

    def next_id(self, prefix: str = "c") -> str:
        return f"{prefix}-{self._run}-{next(self._ids)}"

    def command(self, actor: str, *ops: dict, id: str | None = None) -> dict:
        return {"id": id or self.next_id(), "actor": actor, "ops": list(ops)}

    def sign(self, command: dict, key=None) -> str:
        """base64 Ed25519 over RFC 8785 JCS(command), by the actor's current key unless told."""
        from ledger.encoding import b64encode, canonical

        key = key or self.principals[command["actor"]].key
        return b64encode(key.sign(canonical(command)))

    def envelope(self, actor: str, *ops: dict, id: str | None = None, key=None) -> dict:
        command = self.command(actor, *ops, id=id)
        return {"command": command, "signature": self.sign(command, key)}

    def headers(self, token: str | None) -> dict[str, str]:
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: Any = None, *, token: str | None = None, data: bytes | str | None = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        """POST JSON (``body``) or raw bytes (``data``, sent as application/json unless told)."""
        all_headers = {"Content-Type": "application/json", **self.headers(token), **(headers or {})}
        if data is None:
            try:
                data = json.dumps(body, ensure_ascii=False, allow_nan=True).encode()
            except UnicodeEncodeError:  # lone surrogates: only \u escapes can carry them
                data = json.dumps(body, allow_nan=True).encode()
        return self.http.post(self.url + path, data=data, headers=all_headers, timeout=60)

    def post_envelope(self, envelope: Any, *, actor: str | None = None, token: str | None = None,
                      **kwargs) -> requests.Response:
        if token is None and actor is not None:
            token = self.principals[actor].token
        return self.post("/v1/commands", envelope, token=token, **kwargs)

    def submit(self, actor: str, *ops: dict, id: str | None = None, key=None,
               token: str | None = None) -> requests.Response:
        """Sign a command of ``actor`` and POST it with ``actor``'s token (or ``token``)."""
        envelope = self.envelope(actor, *ops, id=id, key=key)
        return self.post_envelope(envelope, token=token or self.principals[actor].token)

    def batch(self, actor: str, envelopes: list[dict], *, token: str | None = None) -> requests.Response:
        return self.post("/v1/commands/batch", {"commands": envelopes},
                         token=token or self.principals[actor].token)

    def ok(self, actor: str, *ops: dict, id: str | None = None, key=None) -> dict:
        """Submit; it must be appended (201). Returns the answer."""
        response = self.submit(actor, *ops, id=id, key=key)
        assert response.status_code == 201, (f"{actor} {[op.get('op') for op in ops]}: expected 201, got "
                                              f"{response.status_code}: {response.text[:2000]}")
        return response.json()

    def refused(self, actor: str, *ops: dict, status: int, code: str, op: int | None = 0, id: str | None = None,
                key=None, token: str | None = None) -> dict:
        """Submit; it must be refused with ``status`` and ``code`` (and ``op`` unless None),
        appending nothing. Returns the problem."""
        before = self.log_size()
        response = self.submit(actor, *ops, id=id, key=key, token=token)
        problem = check_problem(response, status, code, op=op)
        assert self.log_size() == before, f"a refused command ({code}) appended an entry"
        return problem

    # -- conveniences -----------------------------------------------------------------------------

    def new_account(self, province: str, kind: str = "ENT", *, name: str = "test holder") -> str:
        """Open a fresh account of ``kind`` (ENT with a valid USCC, or IND) by the province's exchange."""
        number = next(self._accounts)
        account = enterprise(province, number) if kind == "ENT" else f"{province}:{kind}:t-{number}"
        self.ok(OPERATOR_OF[province], {"op": "account.open", "account": account, "name": name})
        return account

    def issue(self, asset: str, to: str, quantity: str) -> dict:
        issuer = ASSET_DEFINITIONS[asset][0] if asset in ASSET_DEFINITIONS else self._issuer_of(asset)
        return self.ok(issuer, {"op": "issue", "asset": asset, "to": to, "quantity": quantity})

    def _issuer_of(self, asset: str) -> str:
        from ledger.projections import Asset

        return self.get(Asset, asset).issuer

    def deposit(self, account: str, amount: str) -> dict:
        return self.ok(OPERATOR_OF[account.split(":")[0]], {"op": "cny.deposit", "account": account, "amount": amount})

    # -- reads ------------------------------------------------------------------------------------

    @property
    def store(self):
        """An in-process LogStore on the server's database (its projection tables, its log)."""
        if self._store is None:
            from api.settings import load_settings
            from api.storage import open_store

            self._store = open_store(load_settings(environ=self.server.env))
        return self._store

    def log_size(self) -> int:
        return self.store.size()

    def entries(self, start: int = 0) -> list[dict]:
        """Every entry from ``start`` on, through ``GET /v1/log/entries`` (all pages)."""
        items, cursor = [], start
        while cursor is not None:
            page = self.server.get("/v1/log/entries", params={"start": cursor, "limit": 1000}).json()
            items.extend(page["entries"])
            cursor = page["next"]
        return items

    def checkpoint(self) -> bytes:
        return self.server.get("/v1/log/checkpoint").content

    def log_key(self) -> str:
        return self.server.get("/v1/log/keys").json()["log"]

    def rows(self, model, *where) -> list:
        from sqlalchemy import select
        from sqlmodel import Session

        with Session(self.store.engine) as session:
            rows = list(session.exec(select(model).where(*where)).scalars())
            session.expunge_all()
            return rows

    def get(self, model, key):
        from sqlmodel import Session

        with Session(self.store.engine) as session:
            row = session.get(model, key)
            if row is not None:
                session.expunge(row)
            return row

    def balance(self, account: str, asset: str) -> dict[str, int]:
        """total, frozen, pledged, held and available, in the asset's smallest units."""
        from ledger.projections import Balance

        row = self.get(Balance, (account, asset))
        values = {name: getattr(row, name) if row else 0 for name in ("total", "frozen", "pledged", "held")}
        values["available"] = values["total"] - values["frozen"] - values["pledged"] - values["held"]
        return values

    def total(self, account: str, asset: str) -> int:
        return self.balance(account, asset)["total"]

    def read(self, path: str, *, as_: str = "auditor", expect: int | None = 200, **params) -> requests.Response:
        """GET a registry read (``/v1/accounts/…``) with ``as_``'s token."""
        response = self.http.get(self.url + path, params=params or None, timeout=30,
                                 headers=self.headers(self.principals[as_].token))
        if expect is not None:
            assert response.status_code == expect, f"GET {path}: {response.status_code} {response.text[:2000]}"
        return response

    def registry_balances(self, account: str, *, as_: str = "auditor") -> dict[str, dict[str, str]]:
        """``GET /v1/accounts/<account>``'s balances by asset: decimal strings as served."""
        body = self.read(f"/v1/accounts/{account}", as_=as_).json()
        return {b["asset"]: {k: b[k] for k in ("total", "available", "frozen", "pledged", "held")}
                for b in body["balances"]}

    # -- the standard setup -------------------------------------------------------------------------

    @classmethod
    def standard(cls, server: LedgerServer, *, assets: bool = True, funds: bool = True,
                 admin_by_subprocess: bool = False) -> "World":
        """The two-province cast (:data:`CAST`), the standard accounts, and (``assets``) one asset
        of every instrument with (``funds``) holdings and CNY for the enterprises:

        * SC_A … SC_D and CQ_A, CQ_B: enterprises; SC_P, CQ_P: individuals;
        * ``funds``: SC_A–SC_D hold 1000 t PDR_SC, 1000 tce EUR_SC, 10000 m³ WR_SC, 1000 CHTF and
          100000 元; CQ_A, CQ_B hold 1000 t PDR_CQ, 1000 CQCER and 100000 元.
        """
        world = cls(server)
        for member in CAST:
            in_process = not (admin_by_subprocess and member.name == "admin")
            world.add_principal(member.name, member.role, member.province, member.instruments,
                                in_process=in_process)
        world.ok("sc-exchange", *({"op": "account.open", "account": a, "name": f"enterprise {a[-4:]}"}
                                  for a in SC_ENTERPRISES),
                 {"op": "account.open", "account": SC_P, "name": "张三"}, id="setup-sc-accounts")
        world.ok("cq-exchange", *({"op": "account.open", "account": a, "name": f"enterprise {a[-4:]}"}
                                  for a in CQ_ENTERPRISES),
                 {"op": "account.open", "account": CQ_P, "name": "李四"}, id="setup-cq-accounts")
        if assets:
            for asset, (issuer, op) in ASSET_DEFINITIONS.items():
                answer = world.ok(issuer, op, id=f"setup-define-{asset}")
                assert answer["results"] == [{"asset": asset}], answer
        if assets and funds:
            holdings = {PDR_SC: "1000", EUR_SC: "1000", WR_SC: "10000", CHTF: "1000"}
            for asset, quantity in holdings.items():
                issuer = ASSET_DEFINITIONS[asset][0]
                world.ok(issuer, *({"op": "issue", "asset": asset, "to": a, "quantity": quantity}
                                   for a in SC_ENTERPRISES), id=f"setup-issue-{asset}")
            for asset in (PDR_CQ, CQCER):
                world.ok(ASSET_DEFINITIONS[asset][0], *({"op": "issue", "asset": asset, "to": a, "quantity": "1000"}
                                                        for a in CQ_ENTERPRISES), id=f"setup-issue-{asset}")
            world.ok("sc-exchange", *({"op": "cny.deposit", "account": a, "amount": "100000"}
                                      for a in (*SC_ENTERPRISES, SC_P)), id="setup-sc-cny")
            world.ok("cq-exchange", *({"op": "cny.deposit", "account": a, "amount": "100000"}
                                      for a in (*CQ_ENTERPRISES, CQ_P)), id="setup-cq-cny")
        return world


def check_problem(response: requests.Response, status: int, code: str, *, op: int | None = None) -> dict:
    """The response is an RFC 9457 problem with ``status`` and ``code`` (and ``op`` unless None)."""
    assert (response.status_code, _code(response)) == (status, code), (
        f"expected {status} {code}, got {response.status_code}: {response.text[:2000]}")
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    problem = response.json()
    assert problem["status"] == status and problem["code"] == code, problem
    if op is not None:
        assert problem.get("op") == op, f"expected the failing op {op}: {problem}"
    return problem


def _code(response: requests.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


# -- databases and servers for a module ---------------------------------------------------------


@contextmanager
def database(engine: str, directory: Path) -> Iterator[str]:
    """An empty database of its own on ``engine`` ("sqlite" or "postgresql").

    On PostgreSQL it is a database of its own (``CREATE DATABASE``, dropped afterwards), not just a
    schema of ``ECOLEDGER_TEST_DATABASE_URL``'s database: the log's writer lock is an advisory lock
    with a fixed key, shared by every ledger of one database, so a ledger in another schema (another
    test run's) that holds it would stall this server's writes past gunicorn's timeout. Without the
    right to create databases it falls back to a schema (:func:`support.databases.postgresql_schema`).
    """
    if engine == "sqlite":
        yield f"sqlite:///{directory}/ledger.db"
        return
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from ledger.database import normalise_url
    from support.databases import postgresql_schema

    name = f"e2e_{secrets.token_hex(6)}"
    admin = create_engine(normalise_url(TEST_DATABASE_URL), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        try:
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))
        except SQLAlchemyError:
            with postgresql_schema(TEST_DATABASE_URL) as url:
                yield url
            return
        try:
            yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


@contextmanager
def running_server(engine: str, directory: Path, *, workers: int = 2) -> Iterator[tuple[LedgerServer, str]]:
    """``ecoledger serve`` with ``workers`` gunicorn workers on a fresh database; yields
    (server, database URL). Its output is printed at the end (pytest shows it for failures)."""
    with database(engine, directory) as url:
        server = LedgerServer.start(home=directory / "home", database_url=url, origin=ORIGIN, workers=workers)
        try:
            yield server, url
        finally:
            server.stop()
            print(server.output())


@contextmanager
def running_world(engine: str, directory: Path, *, workers: int = 2, **standard) -> Iterator[World]:
    """A running server (``workers`` gunicorn workers, fresh database) with :meth:`World.standard`
    on it (keyword arguments go there). Whatever server the world runs on at the end (see
    :meth:`World.restart`) is stopped, and its output printed (pytest shows it for failures)."""
    with database(engine, directory) as url:
        server = LedgerServer.start(home=directory / "home", database_url=url, origin=ORIGIN, workers=workers)
        world = None
        try:
            world = World.standard(server, **standard)
            world.workers = workers
            world.engine = engine
            yield world
        finally:
            current = world.server if world is not None else server
            if world is not None:
                world.close()
            server.stop()
            current.stop()
            print(current.output())
