"""A realistic two-province data set for trying the ledger: ``ecoledger demo``.

Sixteen principals (the operator, eight issuing authorities, the two exchanges, the finance
bureaus, the monitoring stations, an auditor), nine enterprises of Chengdu and Chongqing with
valid 统一社会信用代码, an asset of every instrument defined and issued, CNY deposits, trades within
and across the provinces (one cross-province trade confirmed, one left pending), a pledge, a
judicial freeze, carbon credits transferred across the border and retired (川渝互认), and an
energy-use surrender.

Every principal signs its own commands with its key under ``<home>/keys/principals/``; the
first administrator is registered by the ledger itself, as ``ecoledger principal add`` does.
Command ids are fixed, so a second run finds every command in the log already and appends
nothing. The API tokens go to ``<home>/demo-tokens.json`` (mode 0600) and are reused while
they are valid.
"""

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api.auth import mint_token, token_hash
from api.client import create_key, load_key, principal_key_path, sign_command
from contracts.commands import Outcome, submit, submit_ledger
from contracts.context import SHANGHAI
from contracts.errors import Refused
from contracts.instruments import INSTRUMENTS
from contracts.principals import current_key
from contracts.uscc import check_character
from ledger.keys import SigningKey
from ledger.projections import Asset, Principal, PrincipalToken, Trade
from ledger.store import LogStore, LogWriter

TOKENS_FILE = "demo-tokens.json"


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


def run_demo(store: LogStore, home: Path) -> DemoResult:
    """Fill the ledger with the demo data set; a second run appends nothing."""
    home = Path(home)
    keys = _principal_keys(home)
    tokens_path = home / TOKENS_FILE
    with store.writer() as writer:
        demo = _Demo(writer, keys, home)
        demo.register()
        assets, pending = demo.populate()
        tokens, minted = _tokens(writer.session, _read_tokens(tokens_path))
        today = datetime.now(UTC).astimezone(SHANGHAI).date().isoformat()
        due = [a for a in assets if (row := writer.session.get(Asset, a)).expired_seq is None
               and row.expires_on is not None and row.expires_on < today]
        status = writer.session.get(Trade, pending).status
    if minted or not tokens_path.exists():
        _write_tokens(tokens_path, home, tokens)
    return DemoResult(home=home, appended=demo.appended, size=store.size(), principals=[p.name for p in PARTIES],
                      accounts=[x.account for x in ENTERPRISES.values()], assets=assets, pending_trade=pending,
                      pending_trade_status=status,
                      due_to_expire=due, tokens_path=tokens_path, keys_dir=principal_key_path(home, "x").parent,
                      tokens=tokens)


__all__ = ["ENTERPRISES", "PARTIES", "DemoError", "DemoResult", "asset_id", "principal_op", "run_demo", "uscc"]
