"""Scenario builders for tests: principals with keys and tokens, signed commands, a standard world.

Commands go straight through the contracts layer (:func:`contracts.commands.submit`) inside the
application's context, exactly as ``POST /v1/commands`` appends them, so tests of reads do not
depend on the HTTP write path::

    registry = Registry(app)
    sc = registry.principal("sc-exchange", "operator", "SC")
    registry.command("sc-exchange", {"op": "account.open", "account": enterprise("SC", 1), "name": "A"})
    client.get("/v1/accounts", headers=sc.headers)

:func:`standard_world` builds the two-province world most read tests need; :class:`World` names
its principals, accounts, assets and records, and documents every movement, so a test can state
the balances and totals those movements imply.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from flask import Flask

from api.auth import mint_token
from api.storage import get_store
from contracts.commands import Outcome, submit, submit_ledger
from contracts.uscc import check_character
from ledger.encoding import b64encode, canonical
from ledger.keys import SigningKey

DIVISIONS = {"SC": "510100", "CQ": "500000"}
"""Administrative division codes used in test USCCs: 成都市, 重庆市."""


def uscc(first17: str) -> str:
    """A valid 统一社会信用代码: ``first17`` and its GB 32100-2015 check character."""
    return first17 + check_character(first17)


def enterprise(province: str, number: int) -> str:
    """The ENT account id of test enterprise ``number`` of ``province``, with a valid USCC."""
    division = DIVISIONS.get(province, "110000")
    return f"{province}:ENT:{uscc(f'91{division}MA{number:07d}')}"


@dataclass(frozen=True)
class Member:
    """A principal of the ledger under test, with its signing key and an API token."""

    name: str
    role: str
    province: str | None
    key: SigningKey = field(repr=False)
    token: str = field(repr=False)
    account: str | None = None
    """Its home account (issuer ISS, operator EXC, finance FIN), if its role gives it one."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Registry:
    """A ledger under test: add principals, submit their signed commands, mint their tokens."""

    def __init__(self, app: Flask):
        self.app = app
        self.members: dict[str, Member] = {}
        self._ids = count(1)

    def __getitem__(self, name: str) -> Member:
        return self.members[name]

    def principal(self, name: str, role: str, province: str | None = None,
                  instruments: Iterable[str] = (), display_name: str = "") -> Member:
        """Register a principal (a ``principal.add`` of the ledger itself) and mint it a token."""
        key = SigningKey.generate(name)
        op: dict[str, Any] = {"op": "principal.add", "name": name, "role": role, "key": str(key.verifier)}
        if province is not None:
            op["province"] = province
        if instruments:
            op["instruments"] = sorted(instruments)
        if display_name:
            op["display_name"] = display_name
        with self.app.app_context():
            with get_store().writer() as writer:
                outcome = submit_ledger(writer, f"add-{name}", [op])
        member = Member(name=name, role=role, province=province, key=key, token=self.token(name),
                        account=outcome.results[0].get("account"))
        self.members[name] = member
        return member

    def token(self, name: str) -> str:
        """A new API token for ``name`` (a principal needs not exist for its token to be stored)."""
        with self.app.app_context():
            with get_store().reader() as session:
                token = mint_token(session, name)
                session.commit()
        return token

    def command(self, actor: str, *ops: dict[str, Any]) -> Outcome:
        """Sign and submit one command of ``actor``; raises :class:`contracts.errors.Refused`."""
        command = {"id": f"t{next(self._ids)}", "actor": actor, "ops": list(ops)}
        signature = b64encode(self.members[actor].key.sign(canonical(command)))
        with self.app.app_context():
            with get_store().writer() as writer:
                return submit(writer, command=command, signature=signature)

    def ledger(self, *ops: dict[str, Any]) -> Outcome:
        """A command of the ledger itself (expiry, trade expiry…), signed with the log key."""
        with self.app.app_context():
            with get_store().writer() as writer:
                return submit_ledger(writer, f"ledger-{next(self._ids)}", list(ops))

    def result(self, actor: str, *ops: dict[str, Any]) -> dict[str, Any]:
        """The first op's result of a command: ``registry.result(...)["asset"]``."""
        return self.command(actor, *ops).results[0]


@dataclass
class World:
    """What :func:`standard_world` built. Movements, in order (quantities as on the wire):

    SC: enterprises A, B; CQ: enterprises C, D. CNY deposits: B 10000.00, C 5000.00.

    1. ``pdr`` (PDR-SC-COD 2025–2029, by sc-sthj): 100.000 issued to A.
    2. trade A→B 10.500 at 123.45 within SC: settles, 1296.23 (half-up from 1296.225) B→A.
    3. trade A→C 20.000 at 100 across provinces: pending, then confirmed by cq-exchange;
       C pays 2000.00, A receives 2000.00, obligation CQ:EXC:cq-exchange owes SC:EXC:sc-exchange 2000.00.
    4. trade A→C 5.000 at 50 across provinces: left pending (A holds 5.000, C holds 250.00).
    5. pledge of 30.000 on A (pledgee 成都银行); freeze of 2.000 on B; surrender of 1.000 from B.
    6. ``eur`` (EUR-SC-2025): 500.000 issued to B, 120.250 surrendered.
    7. ``wr`` (WR-SC-minjiang-withdrawal): 1000 then 200 issued to A; the 200 reversed by admin.
    8. ``chtf`` (碳惠天府): 100 issued to A (serials 1–100); 11–40 transferred to B; B retires 5
       (serials 11–15); A sells 10 (serials 1–10) to C at 30 across provinces, confirmed
       (obligation 300.00); C retires serials 1–3.
    9. ``cqcer`` (碳惠通, by cq-sthj): 50 issued to C; C retires 10 (serials 1–10).
    10. ``pdr_cq`` (PDR-CQ-NH3N 2025–2029): 40.000 issued to C.
    11. ``old`` (PDR-CQ-SO2 2020–2024): 7.500 issued to D, then expired by the ledger.
    12. D's whole account frozen by cq-exchange.
    """

    registry: Registry
    accounts: dict[str, str] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)
    trades: dict[str, str] = field(default_factory=dict)
    holds: dict[str, str] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    obligation: str = ""

    def __getitem__(self, name: str) -> Member:
        return self.registry[name]


def standard_principals(registry: Registry) -> None:
    """admin, auditor, and for each of SC and CQ: an exchange, issuers, a finance bureau, a monitor."""
    registry.principal("admin", "admin")
    registry.principal("auditor", "auditor")
    registry.principal("sc-sthj", "issuer", "SC", ["PDR", "EUR"], display_name="四川省生态环境厅")
    registry.principal("sc-slt", "issuer", "SC", ["WR"], display_name="四川省水利厅")
    registry.principal("cd-sthj", "issuer", "SC", ["CHTF"], display_name="成都市生态环境局")
    registry.principal("cq-sthj", "issuer", "CQ", ["PDR", "CQCER"], display_name="重庆市生态环境局")
    registry.principal("sc-exchange", "operator", "SC", display_name="四川联合环境交易所")
    registry.principal("cq-exchange", "operator", "CQ", display_name="重庆联合产权交易所")
    registry.principal("sc-finance", "finance", "SC", display_name="四川省财政厅")
    registry.principal("cq-finance", "finance", "CQ", display_name="重庆市财政局")
    registry.principal("sc-monitor", "monitor", "SC")


def standard_world(app: Flask) -> World:
    """The two-province world described in :class:`World`."""
    registry = Registry(app)
    standard_principals(registry)
    world = World(registry=registry)
    A, B, C, D = (enterprise("SC", 1), enterprise("SC", 2), enterprise("CQ", 3), enterprise("CQ", 4))
    world.accounts.update(A=A, B=B, C=C, D=D)
    sc, cq = "sc-exchange", "cq-exchange"
    registry.command(sc, {"op": "account.open", "account": A, "name": "成都甲化工有限公司"},
                     {"op": "account.open", "account": B, "name": "成都乙电力有限公司"})
    registry.command(cq, {"op": "account.open", "account": C, "name": "重庆丙钢铁有限公司"},
                     {"op": "account.open", "account": D, "name": "重庆丁建材有限公司"})
    registry.command(sc, {"op": "cny.deposit", "account": B, "amount": "10000.00"})
    registry.command(cq, {"op": "cny.deposit", "account": C, "amount": "5000.00"})

    def define(issuer: str, instrument: str, **attributes) -> str:
        op = {"op": "asset.define", "instrument": instrument, "attributes": attributes}
        return registry.result(issuer, op)["asset"]

    pdr = define("sc-sthj", "PDR", pollutant="COD", valid_from="2025-01-01", valid_until="2029-12-31")
    registry.command("sc-sthj", {"op": "issue", "asset": pdr, "to": A, "quantity": "100.000"})
    world.trades["local"] = registry.result(
        sc, {"op": "trade", "asset": pdr, "quantity": "10.500", "price": "123.45", "seller": A, "buyer": B})["trade"]
    cross = registry.result(sc, {"op": "trade", "asset": pdr, "quantity": "20", "price": "100",
                                 "seller": A, "buyer": C})
    world.trades["confirmed"] = cross["trade"]
    world.obligation = registry.result(cq, {"op": "trade.confirm", "trade": cross["trade"]})["obligation"]
    world.trades["pending"] = registry.result(
        sc, {"op": "trade", "asset": pdr, "quantity": "5", "price": "50", "seller": A, "buyer": C})["trade"]
    world.holds["pledge"] = registry.result(sc, {"op": "pledge", "account": A, "asset": pdr, "quantity": "30",
                                                 "pledgee": "成都银行", "reference": "ZY-1"})["pledge"]
    world.holds["freeze"] = registry.result(sc, {"op": "account.freeze", "account": B, "asset": pdr,
                                                 "quantity": "2.000", "reason": "（2025）川01执123号"})["freeze"]
    registry.command(sc, {"op": "surrender", "account": B, "asset": pdr, "quantity": "1", "compliance_year": 2025})

    eur = define("sc-sthj", "EUR", compliance_year=2025)
    registry.command("sc-sthj", {"op": "issue", "asset": eur, "to": B, "quantity": "500"})
    registry.command(sc, {"op": "surrender", "account": B, "asset": eur, "quantity": "120.25",
                          "compliance_year": 2025})

    wr = define("sc-slt", "WR", right_type="withdrawal", basin="minjiang",
                term_start="2025-01-01", term_end="2034-12-31")
    registry.command("sc-slt", {"op": "issue", "asset": wr, "to": A, "quantity": "1000"})
    mistake = registry.command("sc-slt", {"op": "issue", "asset": wr, "to": A, "quantity": "200"})
    world.seqs["wr_mistake"] = mistake.seq
    world.seqs["wr_reversal"] = registry.command("admin", {"op": "reverse", "seq": world.seqs["wr_mistake"],
                                                           "reason": "issued twice"}).seq

    chtf = define("cd-sthj", "CHTF", methodology="cdcer-001", project="chengdu-metro", vintage=2024)
    registry.command("cd-sthj", {"op": "issue", "asset": chtf, "to": A, "quantity": "100"})
    registry.command(sc, {"op": "transfer", "asset": chtf, "from": A, "to": B, "quantity": "30",
                          "serials": [f"{chtf}-11-40"]})
    registry.command(sc, {"op": "retire", "account": B, "asset": chtf, "quantity": "5",
                          "purpose": "大型活动碳中和", "beneficiary": "成都大运会"})
    carbon = registry.result(sc, {"op": "trade", "asset": chtf, "quantity": "10", "price": "30",
                                  "seller": A, "buyer": C})
    world.trades["carbon"] = carbon["trade"]
    registry.command(cq, {"op": "trade.confirm", "trade": carbon["trade"]})
    registry.command(cq, {"op": "retire", "account": C, "asset": chtf, "quantity": "3",
                          "purpose": "川渝互认 抵消", "beneficiary": "重庆丙钢铁有限公司"})

    cqcer = define("cq-sthj", "CQCER", methodology="cqcer-pv", project="fuling-solar", vintage=2024)
    registry.command("cq-sthj", {"op": "issue", "asset": cqcer, "to": C, "quantity": "50"})
    registry.command(cq, {"op": "retire", "account": C, "asset": cqcer, "quantity": "10",
                          "purpose": "碳中和", "beneficiary": "重庆丙钢铁有限公司"})

    pdr_cq = define("cq-sthj", "PDR", pollutant="NH3N", valid_from="2025-01-01", valid_until="2029-12-31")
    registry.command("cq-sthj", {"op": "issue", "asset": pdr_cq, "to": C, "quantity": "40"})
    old = define("cq-sthj", "PDR", pollutant="SO2", valid_from="2020-01-01", valid_until="2024-12-31")
    registry.command("cq-sthj", {"op": "issue", "asset": old, "to": D, "quantity": "7.5"})
    registry.ledger({"op": "expire", "asset": old})
    world.holds["account_freeze"] = registry.result(
        cq, {"op": "account.freeze", "account": D, "reason": "司法冻结"})["freeze"]

    world.assets.update(pdr=pdr, eur=eur, wr=wr, chtf=chtf, cqcer=cqcer, pdr_cq=pdr_cq, old=old)
    return world
