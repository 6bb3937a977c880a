"""A realistic two-province data set for trying the ledger: ``ecoledger demo``.

Sixteen principals (the operator, eight issuing authorities, the two exchanges, the finance
bureaus, the monitoring stations, an auditor), nine enterprises of Chengdu and Chongqing with
valid 统一社会信用代码, an asset of every instrument defined and issued, CNY deposits, trades within
and across the provinces (one cross-province trade confirmed, one left pending), a pledge, a
judicial freeze, carbon credits transferred across the border and retired (川渝互认), and an
energy-use surrender.

Watershed compensation between the two provinces: the sample agreements of
``config/agreements/`` that involve only SC and CQ (琼江 ``qiongjiang``, monthly class target and
index change; 渠江 ``qujiang``, yearly P index; 濑溪河 ``laixihe``, monthly class steps), each
proposed by one finance bureau and signed by the other; the monitoring stations' samples (two a
month, on the 8th and the 22nd) from the reference year before each term up to the last complete
period, drawn from a generator seeded by section and date, so every run draws the same values;
the settlement job's statements for every period past its grace days, one of them superseded
after a correction (a TP value of 琼江 in June 2025 typed ten times too high); then a clearing run
of the ``compensation`` and of the ``trade`` pool, the compensation payment confirmed by both
bureaus (the CNY moves), the trade payment confirmed by its payer only and left waiting for the
payee. ``config/`` is not part of an installed package: the agreements are read from the
repository next to this package, and skipped with a note when it is not there.

Every principal signs its own commands with its key under ``<home>/keys/principals/``; the
first administrator is registered by the ledger itself, as ``ecoledger principal add`` does.
Command ids are fixed, so a second run finds every command in the log already and appends
nothing. The API tokens go to ``<home>/demo-tokens.json`` (mode 0600) and are reused while
they are valid.
"""

import json
import logging
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import func, select

from api.auth import mint_token, token_hash
from api.client import create_key, load_key, principal_key_path, sign_command
from contracts.clearing import POOLS
from contracts.commands import Outcome, submit, submit_ledger
from contracts.context import SHANGHAI
from contracts.errors import Refused
from contracts.instruments import INSTRUMENTS
from contracts.principals import current_key
from contracts.uscc import check_character
from ledger.keys import SigningKey
from ledger.projections import (Agreement, AgreementSignature, Asset, ClearingPayment, ClearingRun, Obligation,
                                Principal, PrincipalToken, Statement, Trade)
from ledger.store import LogStore, LogWriter
from settlement.clearing import clear
from settlement.periods import period_bounds, period_of
from settlement.service import due_periods, settle

TOKENS_FILE = "demo-tokens.json"
AGREEMENTS_DIR = Path(__file__).resolve().parents[1] / "config" / "agreements"
"""The sample agreements, in the repository (``config/`` is not inside an installed package)."""
DEFAULT_GRACE_DAYS = 10
_log = logging.getLogger("ecoledger.demo")


class DemoError(ValueError):
    """The demo cannot run on this ledger (a principal of its own exists with another key…)."""


# -- who ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    role: str
    province: str | None
    display_name: str
    instruments: tuple[str, ...] = ()


ADMIN = Party("admin", "admin", None, "川渝生态权益登记簿 运营方")

PARTIES = (
    ADMIN,
    Party("sc-sthj", "issuer", "SC", "四川省生态环境厅", ("PDR",)),
    Party("sc-slt", "issuer", "SC", "四川省水利厅", ("WR",)),
    Party("sc-fgw", "issuer", "SC", "四川省发展和改革委员会", ("EUR",)),
    Party("cd-sthj", "issuer", "SC", "成都市生态环境局（碳惠天府）", ("CHTF",)),
    Party("cq-sthj", "issuer", "CQ", "重庆市生态环境局", ("PDR",)),
    Party("cq-slj", "issuer", "CQ", "重庆市水利局", ("WR",)),
    Party("cq-fgw", "issuer", "CQ", "重庆市发展和改革委员会", ("EUR",)),
    Party("cq-sthj-thc", "issuer", "CQ", "重庆市生态环境局（碳惠通）", ("CQCER",)),
    Party("sc-exchange", "operator", "SC", "四川联合环境交易所"),
    Party("cq-exchange", "operator", "CQ", "重庆联合产权交易所"),
    Party("sc-finance", "finance", "SC", "四川省财政厅"),
    Party("cq-finance", "finance", "CQ", "重庆市财政局"),
    Party("sc-monitor", "monitor", "SC", "四川省生态环境监测总站"),
    Party("cq-monitor", "monitor", "CQ", "重庆市生态环境监测中心"),
    Party("auditor", "auditor", None, "川渝联合审计组（第三方审计）"),
)


def uscc(division: str, organisation: str) -> str:
    """A 统一社会信用代码 of an enterprise (登记管理部门 9, 类别 1) with its check character."""
    first17 = f"91{division}{organisation}"
    return first17 + check_character(first17)


@dataclass(frozen=True, slots=True)
class Enterprise:
    key: str
    province: str
    division: str
    organisation: str
    name: str

    @property
    def account(self) -> str:
        return f"{self.province}:ENT:{uscc(self.division, self.organisation)}"


ENTERPRISES = {e.key: e for e in (
    # 成都 (5101xx)
    Enterprise("qingbaijiang-chem", "SC", "510113", "MA6CQB2K4", "成都青白江绿源化工有限公司"),
    Enterprise("longquanyi-auto", "SC", "510112", "MA62R7XN8", "成都龙泉驿新能汽车零部件有限公司"),
    Enterprise("jinjiang-water", "SC", "510104", "MA6AW3L5T", "四川锦江水务环境有限公司"),
    Enterprise("tianfu-solar", "SC", "510116", "MA68GJ9P1", "成都天府绿能光伏科技有限公司"),
    Enterprise("wuhou-electronics", "SC", "510107", "MA6DHK4W2", "成都武侯智造电子科技有限公司"),
    # 重庆 (500000 and its districts 5001xx)
    Enterprise("changshou-energy", "CQ", "500115", "MA5U7C8M3", "重庆长寿经开区清洁能源有限公司"),
    Enterprise("liangjiang-equipment", "CQ", "500112", "MA60XT5R9", "重庆两江新区智能装备制造有限公司"),
    Enterprise("jialingjiang-water", "CQ", "500000", "MA5YH2B64", "重庆嘉陵江水务投资有限公司"),
    Enterprise("wulong-forest", "CQ", "500156", "MA61LN7D8", "重庆武隆森林碳汇发展有限公司"),
)}


def principal_op(name: str, role: str, province: str | None, key: SigningKey, *,
                 display_name: str = "", instruments: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The ``principal.add`` op registering ``name`` with ``key``."""
    op: dict[str, Any] = {"op": "principal.add", "name": name, "role": role, "key": str(key.verifier)}
    if province is not None:
        op["province"] = province
    if display_name:
        op["display_name"] = display_name
    if instruments:
        op["instruments"] = list(instruments)
    return op


def asset_id(instrument: str, province: str, attributes: dict[str, Any]) -> str:
    spec = INSTRUMENTS[instrument]
    return spec.asset_id(province, spec.attributes().load(attributes))


# -- what ---------------------------------------------------------------------------------


# -- watershed compensation ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """How a section's water looks: a typical concentration per indicator (mg/L), the places
    it is reported to, a factor per year (a trend), and the random spread around it."""

    levels: dict[str, str]
    years: dict[int, str]
    spread: int = 120
    """± per mille of noise on every sample."""


@dataclass(frozen=True, slots=True)
class DemoAgreement:
    id: str
    proposer: str
    signer: str
    monitor: str
    profiles: dict[str, Profile]
    """Per section id."""


PLACES = {"CODMn": Decimal("0.1"), "COD": Decimal("0.1"), "BOD5": Decimal("0.1"), "NH3N": Decimal("0.001"),
          "TP": Decimal("0.001"), "TN": Decimal("0.01")}
SEASON = tuple(Decimal(x) for x in ("0.92", "0.90", "0.95", "1.00", "1.05", "1.12", "1.18", "1.15", "1.06",
                                    "0.98", "0.94", "0.90"))
"""Monthly factors: the wet season (汛期, June to September) washes more into the rivers."""
SAMPLE_DAYS = (8, 22)

DEMO_AGREEMENTS = (
    # 琼江 光辉断面 (潼南, Chongqing): monitored by Chongqing's station; getting slowly cleaner.
    DemoAgreement("qiongjiang", "sc-finance", "cq-finance", "cq-monitor", {
        "qj-guanghui": Profile({"CODMn": "3.9", "NH3N": "0.42", "TP": "0.115"},
                               {2024: "1.05", 2025: "1.00", 2026: "0.96"})}),
    # 渠江 赛龙断面: P index around 0.9, met in 2024 and 2025.
    DemoAgreement("qujiang", "sc-finance", "cq-finance", "sc-monitor", {
        "qu-gelan": Profile({"CODMn": "3.2", "NH3N": "0.45", "TP": "0.12", "TN": "1.6"},
                            {2023: "1.12", 2024: "1.10", 2025: "1.02"}, spread=80)}),
    # 濑溪河 高洞电站断面 (泸州, Sichuan): class III to IV, improving after 2024's works upstream.
    DemoAgreement("laixihe", "cq-finance", "sc-finance", "sc-monitor", {
        "lx-gaodong": Profile({"COD": "18.5", "NH3N": "0.85", "TP": "0.17"},
                              {2024: "1.08", 2025: "1.00", 2026: "0.90"}, spread=100)}),
)
TYPO = ("qj-guanghui", "2025-06", "TP")
"""The submission sent with one value ten times too high, then corrected."""
FINANCE = {"SC": "sc-finance", "CQ": "cq-finance"}
EXCHANGES = {"SC": "sc-exchange", "CQ": "cq-exchange"}


def sample_values(section: str, profile: Profile, day: date, indicators: list[str]) -> dict[str, str]:
    """The sample of ``section`` on ``day``: the same every run (seeded by section and date)."""
    rng = random.Random(f"ecoledger-demo:{section}:{day.isoformat()}")
    year = profile.years.get(day.year, profile.years[max(profile.years)])
    values = {}
    for indicator in indicators:
        noise = Decimal(1) + Decimal(rng.randint(-profile.spread, profile.spread)) / 1000
        value = Decimal(profile.levels[indicator]) * SEASON[day.month - 1] * Decimal(year) * noise
        values[indicator] = str(value.quantize(PLACES[indicator], rounding=ROUND_HALF_UP))
    return values


def _months(first: date, last: date) -> list[str]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(period_of(day, "month"))
        day = (day + timedelta(days=32)).replace(day=1)
    return months


def last_complete_day(today: date, kind: str) -> date:
    """The last day of the last period (month or year) that ended before ``today``."""
    first, _ = period_bounds(period_of(today, kind), kind)
    return first - timedelta(days=1)


def _grace_days() -> int:
    if has_app_context() and "ECOLEDGER" in current_app.config:
        return current_app.config["ECOLEDGER"].settlement_grace_days
    return DEFAULT_GRACE_DAYS


@dataclass
class CompensationResult:
    agreements: list[str] = field(default_factory=list)
    submissions: int = 0
    statements: int = 0
    superseded: list[str] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)
    """pool → the demo's clearing run."""
    waiting: list[str] = field(default_factory=list)
    """Payments waiting for a confirmation."""
    notes: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    home: Path
    appended: int
    size: int
    principals: list[str]
    accounts: list[str]
    assets: list[str]
    pending_trade: str
    pending_trade_status: str
    """``pending`` until sc-exchange confirms it (or it is cancelled or expires)."""
    due_to_expire: list[str]
    tokens_path: Path
    keys_dir: Path
    tokens: dict[str, str] = field(repr=False, default_factory=dict)
    compensation: CompensationResult = field(default_factory=CompensationResult)

    def compensation_lines(self) -> list[str]:
        """What the demo holds of compensation and clearing, to print after the summary."""
        c = self.compensation
        lines = list(c.notes)
        if c.agreements:
            lines.append(f"compensation agreements {', '.join(c.agreements)} active: {c.submissions} monitoring "
                         f"submissions, {c.statements} settlement statements"
                         + (f", {len(c.superseded)} of them superseded after the correction of "
                            f"{TYPO[0]} {TYPO[1]}" if c.superseded else ""))
        for pool, run in c.runs.items():
            lines.append(f"clearing run {run} of the {pool} pool")
        for payment in c.waiting:
            lines.append(f"clearing payment {payment} waits for a clearing.confirm")
        return lines


class _Demo:
    def __init__(self, writer: LogWriter, keys: dict[str, SigningKey], home: Path):
        self.writer = writer
        self.home = home
        self.keys = keys
        self.appended = 0

    def do(self, actor: str, command_id: str, *ops: dict[str, Any]) -> Outcome:
        envelope = sign_command(self.keys[actor], {"id": command_id, "actor": actor, "ops": list(ops)})
        try:
            outcome = submit(self.writer, command=envelope["command"], signature=envelope["signature"])
        except Refused as refusal:
            raise Refused(refusal.code, f"demo command {command_id} of {actor}: {refusal.detail}",
                          op=refusal.op) from None
        self.appended += not outcome.replayed
        return outcome

    def register(self) -> None:
        session = self.writer.session
        for party in PARTIES:
            key = self.keys[party.name]
            existing = session.get(Principal, party.name)
            if existing is not None:
                if current_key(session, party.name).verifier != str(key.verifier):
                    raise DemoError(f"principal {party.name} exists with another key than "
                                    f"{principal_key_path(self.home, party.name)}; "
                                    "run the demo in a fresh ECOLEDGER_HOME")
                continue
            op = principal_op(party.name, party.role, party.province, key, display_name=party.display_name,
                              instruments=party.instruments)
            if party is ADMIN:
                outcome = submit_ledger(self.writer, f"principal-add:{party.name}", [op])
                self.appended += not outcome.replayed
            else:
                self.do(ADMIN.name, f"principal-add:{party.name}", op)

    def populate(self) -> tuple[list[str], str]:
        """The market activity; answers the assets and the id of the trade left pending."""
        e = {k: v.account for k, v in ENTERPRISES.items()}

        # Accounts: each exchange opens its own province's enterprises.
        for exchange, province in (("sc-exchange", "SC"), ("cq-exchange", "CQ")):
            self.do(exchange, "demo:open-accounts", *(
                {"op": "account.open", "account": x.account, "name": x.name}
                for x in ENTERPRISES.values() if x.province == province))

        # Initial allocations (初始分配) of every instrument.
        pdr_sc = {"pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}
        pdr_cq = {"pollutant": "NOX", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}
        pdr_cq_old = {"pollutant": "SO2", "valid_from": "2021-01-01", "valid_until": "2025-12-31"}
        wr_sc = {"right_type": "withdrawal", "basin": "minjiang", "term_start": "2025-01-01", "term_end": "2034-12-31"}
        wr_cq = {"right_type": "withdrawal", "basin": "jialingjiang", "term_start": "2025-01-01",
                 "term_end": "2034-12-31"}
        eur = {"compliance_year": 2025}
        chtf = {"methodology": "cdcer-pv-001", "project": "tianfu-rooftop-pv", "vintage": 2025}
        cqcer = {"methodology": "cqcer-forest-001", "project": "wulong-forest-carbon", "vintage": 2025}
        assets = {
            "pdr_sc": asset_id("PDR", "SC", pdr_sc), "pdr_cq": asset_id("PDR", "CQ", pdr_cq),
            "pdr_cq_old": asset_id("PDR", "CQ", pdr_cq_old),
            "wr_sc": asset_id("WR", "SC", wr_sc), "wr_cq": asset_id("WR", "CQ", wr_cq),
            "eur_sc": asset_id("EUR", "SC", eur), "eur_cq": asset_id("EUR", "CQ", eur),
            "chtf": asset_id("CHTF", "SC", chtf), "cqcer": asset_id("CQCER", "CQ", cqcer),
        }

        def define(instrument: str, attributes: dict) -> dict:
            return {"op": "asset.define", "instrument": instrument, "attributes": attributes}

        def issue(asset: str, holder: str, quantity: str) -> dict:
            return {"op": "issue", "asset": assets[asset], "to": e[holder], "quantity": quantity}

        self.do("sc-sthj", "demo:allocation-2025", define("PDR", pdr_sc),
                issue("pdr_sc", "qingbaijiang-chem", "500"), issue("pdr_sc", "longquanyi-auto", "120.5"))
        self.do("sc-slt", "demo:allocation-2025", define("WR", wr_sc),
                issue("wr_sc", "jinjiang-water", "5000000"))
        self.do("sc-fgw", "demo:allocation-2025", define("EUR", eur),
                issue("eur_sc", "qingbaijiang-chem", "12000"), issue("eur_sc", "longquanyi-auto", "3500"))
        self.do("cd-sthj", "demo:issuance-tianfu-rooftop-pv-2025", define("CHTF", chtf),
                issue("chtf", "tianfu-solar", "20000"))
        self.do("cq-sthj", "demo:allocation-2021", define("PDR", pdr_cq_old),
                issue("pdr_cq_old", "changshou-energy", "150"))
        self.do("cq-sthj", "demo:allocation-2025", define("PDR", pdr_cq),
                issue("pdr_cq", "changshou-energy", "300"))
        self.do("cq-slj", "demo:allocation-2025", define("WR", wr_cq),
                issue("wr_cq", "jialingjiang-water", "8000000"))
        self.do("cq-fgw", "demo:allocation-2025", define("EUR", eur),
                issue("eur_cq", "changshou-energy", "8000"), issue("eur_cq", "liangjiang-equipment", "2000"))
        self.do("cq-sthj-thc", "demo:issuance-wulong-forest-carbon-2025", define("CQCER", cqcer),
                issue("cqcer", "wulong-forest", "10000"))

        # CNY deposits into the exchanges' clearing accounts.
        self.do("sc-exchange", "demo:deposits", {"op": "cny.deposit", "account": e["longquanyi-auto"],
                                                 "amount": "1000000.00"})
        self.do("cq-exchange", "demo:deposits",
                {"op": "cny.deposit", "account": e["changshou-energy"], "amount": "800000.00"},
                {"op": "cny.deposit", "account": e["liangjiang-equipment"], "amount": "200000.00"})

        # Trades within a province settle at once.
        self.do("sc-exchange", "demo:trade-pdr-cod-sc", {
            "op": "trade", "asset": assets["pdr_sc"], "quantity": "50", "price": "5200",
            "seller": e["qingbaijiang-chem"], "buyer": e["longquanyi-auto"]})
        self.do("cq-exchange", "demo:trade-eur-cq", {
            "op": "trade", "asset": assets["eur_cq"], "quantity": "500", "price": "68.50",
            "seller": e["changshou-energy"], "buyer": e["liangjiang-equipment"]})

        # Across the border: recorded by one exchange, confirmed by the other.
        cross = self.do("sc-exchange", "demo:trade-pdr-cod-sc-cq", {
            "op": "trade", "asset": assets["pdr_sc"], "quantity": "80", "price": "5350",
            "seller": e["qingbaijiang-chem"], "buyer": e["changshou-energy"]}).results[0]["trade"]
        self.do("cq-exchange", "demo:confirm-pdr-cod-sc-cq", {"op": "trade.confirm", "trade": cross})
        pending = self.do("cq-exchange", "demo:trade-pdr-nox-cq-sc", {
            "op": "trade", "asset": assets["pdr_cq"], "quantity": "40", "price": "3800",
            "seller": e["changshou-energy"], "buyer": e["longquanyi-auto"], "hold_hours": 720,
        }).results[0]["trade"]

        # A pledge (排污权质押贷款) and a judicial freeze (司法冻结).
        self.do("sc-exchange", "demo:pledge-qingbaijiang-chem", {
            "op": "pledge", "account": e["qingbaijiang-chem"], "asset": assets["pdr_sc"], "quantity": "100",
            "pledgee": "中国工商银行成都青白江支行", "reference": "（2026）工银青质字第018号"})
        self.do("cq-exchange", "demo:freeze-jialingjiang-water", {
            "op": "account.freeze", "account": e["jialingjiang-water"], "asset": assets["wr_cq"],
            "quantity": "1000000", "reason": "重庆市第一中级人民法院（2026）渝01执保217号协助执行通知书"})

        # Carbon credits: a transfer in Sichuan, one from Chongqing to Sichuan, a retirement
        # in Sichuan of Chongqing credits (川渝互认).
        self.do("sc-exchange", "demo:transfer-chtf", {
            "op": "transfer", "asset": assets["chtf"], "from": e["tianfu-solar"], "to": e["wuhou-electronics"],
            "quantity": "3000"})
        self.do("cq-exchange", "demo:transfer-cqcer-to-sc", {
            "op": "transfer", "asset": assets["cqcer"], "from": e["wulong-forest"], "to": e["wuhou-electronics"],
            "quantity": "500"})
        self.do("sc-exchange", "demo:retire-cqcer-forum-2026", {
            "op": "retire", "account": e["wuhou-electronics"], "asset": assets["cqcer"], "quantity": "200",
            "purpose": "2026 成渝地区双城经济圈绿色发展论坛 碳中和", "beneficiary": "成都武侯智造电子科技有限公司"})

        # 清缴: the energy-use rights of 2025 surrendered for compliance.
        self.do("sc-fgw", "demo:surrender-eur-2025-longquanyi-auto", {
            "op": "surrender", "account": e["longquanyi-auto"], "asset": assets["eur_sc"], "quantity": "3200",
            "compliance_year": 2025})
        return list(assets.values()), pending


class _Compensation:
    """The demo's agreements, monitoring data, statements and clearing, on top of :class:`_Demo`."""

    def __init__(self, demo: _Demo, today: date, grace_days: int, directory: Path):
        self.demo = demo
        self.session = demo.writer.session
        self.today = today
        self.grace_days = grace_days
        self.directory = directory
        self.result = CompensationResult()

    def run(self) -> CompensationResult:
        documents = self.documents()
        for item, document in documents:
            self.agree(item, document)
        typo = {}
        for item, document in documents:
            typo.update(self.monitor(item, document))
        self.settle_due()
        if TYPO in typo:
            self.correct(*typo[TYPO])
        self.clear_pools()
        self.report()
        return self.result

    def documents(self) -> list[tuple[DemoAgreement, dict]]:
        if not self.directory.is_dir():
            note = (f"no sample agreements: {self.directory} is not there (an installed package has no config/); "
                    "compensation agreements, monitoring and statements skipped")
            _log.warning("demo agreements skipped", extra={"directory": str(self.directory)})
            self.result.notes.append(note)
            return []
        loaded = []
        for item in DEMO_AGREEMENTS:
            path = self.directory / f"{item.id}.json"
            try:
                loaded.append((item, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as error:
                self.result.notes.append(f"agreement {item.id} skipped: {path} cannot be read ({error})")
        return loaded

    def agree(self, item: DemoAgreement, document: dict) -> None:
        """Proposed by one bureau (its party's signature), signed by the other: active."""
        version = document["version"]
        if self.session.get(Agreement, (item.id, version)) is None:
            self.demo.do(item.proposer, f"demo:agreement-propose:{item.id}:{version}",
                         {"op": "agreement.propose", "document": document})
        signer_party = self.session.get(Principal, item.signer).province
        if self.session.get(AgreementSignature, (item.id, version, signer_party)) is None:
            digest = self.session.get(Agreement, (item.id, version)).digest
            self.demo.do(item.signer, f"demo:agreement-sign:{item.id}:{version}", {
                "op": "agreement.sign", "agreement": item.id, "version": version, "digest": digest})
        self.result.agreements.append(item.id)

    def monitor(self, item: DemoAgreement, document: dict) -> dict:
        """One submission per section and month, from the reference year before the term up to
        the last complete period; answers the submission with the typo, if it was sent."""
        start = date.fromisoformat(document["term"]["from"])
        end = min(date.fromisoformat(document["term"]["to"]), last_complete_day(self.today, document["period"]))
        typo = {}
        for section in document["sections"]:
            profile = item.profiles.get(section["id"])
            if profile is None:
                continue
            for month in _months(date(start.year - 1, 1, 1), end):
                first, _ = period_bounds(month, "month")
                samples = [{"date": (day := first.replace(day=d)).isoformat(),
                            "values": sample_values(section["id"], profile, day, document["indicators"])}
                           for d in SAMPLE_DAYS]
                typo_here = (section["id"], month) == TYPO[:2]
                if typo_here:
                    right = [dict(s, values=dict(s["values"])) for s in samples]
                    samples[1]["values"][TYPO[2]] = str(Decimal(samples[1]["values"][TYPO[2]]) * 10)
                outcome = self.demo.do(item.monitor, f"demo:monitoring:{section['id']}:{month}", {
                    "op": "monitoring.submit", "section": section["id"], "samples": samples})
                self.result.submissions += 1
                if typo_here:
                    typo[TYPO] = (item.monitor, outcome.results[0]["submission"], section["id"], month, right)
        return typo

    def settle_due(self) -> None:
        """The settlement job: a statement for every period past its grace days."""
        for agreement, period in due_periods(self.session, self.today, self.grace_days):
            if agreement in self.result.agreements:
                self._settle(agreement, period)

    def _settle(self, agreement: str, period: str) -> None:
        outcome = settle(self.demo.writer, agreement, period)
        self.demo.appended += outcome is not None and not outcome.replayed

    def correct(self, monitor: str, submission: str, section: str, month: str, samples: list) -> None:
        """The station finds the typo and corrects it; the settlement job runs again: the
        statements that used the month (its own, and the one a year later, whose reference
        period it is) are computed again and supersede the first ones."""
        outcome = self.demo.do(monitor, f"demo:monitoring-correct:{section}:{month}", {
            "op": "monitoring.correct", "submission": submission, "samples": samples})
        if not outcome.replayed:  # else the statements were brought up to date already
            self.settle_due()

    def clear_pools(self) -> None:
        """Clear every pool up to its newest open obligation; then the compensation payment is
        confirmed by both bureaus and the trade payment by its payer only."""
        for pool in sorted(POOLS):
            cutoff = self.session.execute(select(func.max(Obligation.created_at)).where(
                Obligation.pool == pool, Obligation.status == "open")).scalar()
            if cutoff:
                outcome = clear(self.demo.writer, pool, cutoff)
                self.demo.appended += outcome is not None and not outcome.replayed
        plan = (("compensation", FINANCE, ("payer", "payee")), ("trade", EXCHANGES, ("payer",)))
        for pool, confirmers, sides in plan:
            run = self.session.execute(select(ClearingRun).where(ClearingRun.pool == pool)
                                       .order_by(ClearingRun.seq).limit(1)).scalars().first()
            if run is None:
                continue
            self.result.runs[pool] = run.id
            payment = self.session.get(ClearingPayment, f"{run.id}-0")
            if payment is None:
                continue
            for side in sides:
                province = getattr(payment, side).split(":", 1)[0]
                confirmer = confirmers.get(province)
                if confirmer and payment.settled_seq is None and getattr(payment, f"{side}_confirmed_by") is None:
                    self.demo.do(confirmer, f"demo:clearing-confirm:{pool}:{side}",
                                 {"op": "clearing.confirm", "payment": payment.id})

    def report(self) -> None:
        ids = self.result.agreements
        if ids:
            self.result.statements = self.session.execute(select(func.count()).select_from(Statement).where(
                Statement.agreement.in_(ids))).scalar_one()
            self.result.superseded = list(self.session.execute(select(Statement.id).where(
                Statement.agreement.in_(ids), Statement.superseded_by.is_not(None)).order_by(Statement.seq)).scalars())
        runs = list(self.result.runs.values())
        if runs:
            self.result.waiting = list(self.session.execute(select(ClearingPayment.id).where(
                ClearingPayment.run.in_(runs), ClearingPayment.settled_seq.is_(None))
                .order_by(ClearingPayment.id)).scalars())


def _principal_keys(home: Path) -> dict[str, SigningKey]:
    keys = {}
    for party in PARTIES:
        path = principal_key_path(home, party.name)
        keys[party.name] = load_key(path, party.name) if path.exists() else create_key(path, party.name)
    return keys


def _read_tokens(path: Path) -> dict[str, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    principals = document.get("principals") if isinstance(document, dict) else None
    if not isinstance(principals, dict):
        return {}
    return {name: item["token"] for name, item in principals.items()
            if isinstance(item, dict) and isinstance(item.get("token"), str)}


def _tokens(session, earlier: dict[str, str]) -> tuple[dict[str, str], bool]:
    """A valid token per principal: the one in the file while it is valid, else a new one."""
    tokens, minted = {}, False
    for party in PARTIES:
        token = earlier.get(party.name)
        stored = session.get(PrincipalToken, token_hash(token)) if token else None
        if stored is None or stored.principal != party.name:
            token, minted = mint_token(session, party.name), True
        tokens[party.name] = token
    return tokens, minted


def _write_tokens(path: Path, home: Path, tokens: dict[str, str]) -> None:
    document = {
        "note": "API tokens of the demo's principals: send one as 'Authorization: Bearer <token>'. "
                "Private keys are in keys/principals/. Demo only: keep this file private.",
        "principals": {p.name: {"role": p.role, "province": p.province, "display_name": p.display_name,
                                "token": tokens[p.name],
                                "private_key": str(principal_key_path(home, p.name).resolve())}
                       for p in PARTIES},
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(document, file, ensure_ascii=False, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def run_demo(store: LogStore, home: Path, *, today: date | None = None, grace_days: int | None = None,
             agreements_dir: Path | None = None) -> DemoResult:
    """Fill the ledger with the demo data set; a second run appends nothing.

    ``today`` (Asia/Shanghai; default now) decides the last complete period monitored and the
    periods due for settlement, ``grace_days`` (default: the ``settlement_grace_days`` setting)
    how long after its end a period is due."""
    home = Path(home)
    today = today or datetime.now(UTC).astimezone(SHANGHAI).date()
    grace_days = _grace_days() if grace_days is None else grace_days
    keys = _principal_keys(home)
    tokens_path = home / TOKENS_FILE
    with store.writer() as writer:
        demo = _Demo(writer, keys, home)
        demo.register()
        assets, pending = demo.populate()
        compensation = _Compensation(demo, today, grace_days, agreements_dir or AGREEMENTS_DIR).run()
        tokens, minted = _tokens(writer.session, _read_tokens(tokens_path))
        due = [a for a in assets if (row := writer.session.get(Asset, a)).expired_seq is None
               and row.expires_on is not None and row.expires_on < today.isoformat()]
        status = writer.session.get(Trade, pending).status
    if minted or not tokens_path.exists():
        _write_tokens(tokens_path, home, tokens)
    return DemoResult(home=home, appended=demo.appended, size=store.size(), principals=[p.name for p in PARTIES],
                      accounts=[x.account for x in ENTERPRISES.values()], assets=assets, pending_trade=pending,
                      pending_trade_status=status,
                      due_to_expire=due, tokens_path=tokens_path, keys_dir=principal_key_path(home, "x").parent,
                      tokens=tokens, compensation=compensation)


__all__ = ["AGREEMENTS_DIR", "DEMO_AGREEMENTS", "ENTERPRISES", "PARTIES", "CompensationResult", "DemoError",
           "DemoResult", "asset_id", "principal_op", "run_demo", "sample_values", "uscc"]
