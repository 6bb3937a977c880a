"""Reads of the registry (specs/ledger-api.md §5): accounts with their balances and history,
assets with their totals, serial traces, trades, pledges, freezes, obligations, principals.

Every list is a page ``{"items": [...], "next": <cursor> | null}``: ``?limit=`` from 1 to 1000
(default 100; anything else is a 400) and ``?cursor=`` the previous page's ``next``
(:mod:`api.registry.paging`). Lists are in a stable key order: accounts, assets and principals
by id or name, histories and serial traces in log order (seq, then index within the entry),
trades by seq, holds by the seq that created them, obligations by their source seq. Every
quantity is a decimal string with its asset's decimals (``"89.500"``), never a float.
Unknown query parameters, malformed filters and cursors are 400 problems; unknown ids are 404
problems (``UNKNOWN_ACCOUNT``, ``UNKNOWN_ASSET``, ``UNKNOWN_SERIAL``, ``UNKNOWN_TRADE``,
``UNKNOWN_PRINCIPAL``).

Who reads what (OWASP API1, object level, and API5, function level), on every read:

* Every read needs ``Authorization: Bearer <token>`` of a principal. Without one, or with a
  token that is not valid, the answer is a 401 problem, before any parameter is looked at.
* ``admin`` and ``auditor`` read everything.
* A provincial principal (``operator``, ``issuer``, ``finance``, ``monitor``) of province P reads:

  - **accounts** of P only: their details, balances and histories. Another province's account is
    a 404 ``UNKNOWN_ACCOUNT`` with the same detail as an account that does not exist, so its
    existence is not revealed. ``GET /v1/accounts`` lists P's accounts only (a ``province``
    filter naming another province gives an empty page, not an error).
  - **pledges and freezes** on P's accounts only (an ``account`` filter of another province gives
    an empty page).
  - **trades** where the seller or the buyer is an account of P (its exchange is a party);
    another trade is a 404 ``UNKNOWN_TRADE``.
  - **obligations** where the debtor or the creditor is an account of P.
  - **assets, their totals and serial traces**: all of them. Assets and their totals are
    market-wide figures every exchange and bureau works with, and a credit's trace must be
    readable in both provinces because a serial is retired at most once across 碳惠天府 and 碳惠通
    (川渝互认). A trace names the accounts a block moved through, as the public log does, and
    nothing about their balances.
  - **principals**: its own record only. ``GET /v1/principals`` is for ``admin`` and ``auditor``
    (403 ``FORBIDDEN_ROLE`` otherwise), and any other name is a 403 ``FORBIDDEN_ROLE`` whether it
    exists or not.

  A visible record may name an account of another province (a trade's other party, an
  obligation's creditor, a move in a serial trace); naming it never lets that account be read.
"""

import json
import re

from flask.views import MethodView
from sqlalchemy import case, func, select
from sqlmodel import Session

from api.problems import Problem
from api.reads import CNY_DECIMALS, ReadBlueprint, entry_facts, known_id, obligation_item
from api.registry.paging import page
from api.registry.schemas import (AccountDetailSchema, AccountPageSchema, AccountsQuery, AssetPageSchema,
                                  AssetSchema, AssetsQuery, HistoryQuery, HoldPageSchema, HoldsQuery,
                                  ObligationPageSchema, ObligationsQuery, PostingPageSchema, PrincipalPageSchema,
                                  PrincipalSchema, PrincipalsQuery, SerialQuery, SerialTraceSchema,
                                  TradePageSchema, TradeSchema, TradesQuery)
from api.registry.scope import Scope
from api.storage import get_store
from contracts.context import is_serialised
from contracts.instruments import INSTRUMENTS
from contracts.quantities import format_units
from ledger.projections import (Account, Asset, Balance, Hold, Obligation, Posting, Principal, PrincipalKey,
                                Reversal, SerialBlock, SerialMove, Trade)

blp = ReadBlueprint("registry", __name__, url_prefix="/v1",
                description="Reads of the registry: accounts, balances, assets, serials, trades, holds, "
                            "obligations, principals. Scoped to the caller's province.")

_SERIAL = re.compile(r"[0-9]{1,19}")


# -- shared look-ups ---------------------------------------------------------------------------


def _visible_account(session: Session, scope: Scope, account_id: str) -> Account:
    known_id(account_id, "UNKNOWN_ACCOUNT", "account")
    account = session.get(Account, account_id)
    if account is None or not scope.sees_account(account.id):
        raise Problem(404, "UNKNOWN_ACCOUNT", f"there is no account {account_id!r}")
    return account


def _asset_totals(session: Session, asset_ids: list[str]) -> dict[str, dict[str, int]]:
    """issued, outstanding, surrendered, retired, expired per asset, in units: one query.

    ``issued`` is minus the balances of the accounts that may go negative (ISS, EXC, FIN): for
    rights, what the issuing authorities issued net of reversals (only ISS accounts ever hold
    rights); for CNY, what was deposited through the exchanges net of withdrawals. As an asset's
    balances always sum to zero, issued = outstanding + surrendered + retired + expired."""
    def where(condition):
        return func.coalesce(func.sum(case((condition, Balance.total), else_=0)), 0)

    sink = Account.kind == "SINK"
    rows = session.execute(
        select(Balance.asset,
               where(Account.kind.in_(("ISS", "EXC", "FIN"))),
               where(Account.kind.in_(("ENT", "IND"))),
               where(sink & Account.id.like("%:SINK:surrendered")),
               where(sink & Account.id.like("%:SINK:retired")),
               where(sink & Account.id.like("%:SINK:expired")))
        .join(Account, Account.id == Balance.account)
        .where(Balance.asset.in_(asset_ids))
        .group_by(Balance.asset)) if asset_ids else []
    totals = {a: dict.fromkeys(("issued", "outstanding", "surrendered", "retired", "expired"), 0)
              for a in asset_ids}
    for asset, iss, holders, surrendered, retired, expired in rows:
        totals[asset] = {"issued": -int(iss), "outstanding": int(holders), "surrendered": int(surrendered),
                         "retired": int(retired), "expired": int(expired)}
    return totals


# -- renderings --------------------------------------------------------------------------------


def _account(account: Account) -> dict:
    return {"id": account.id, "province": account.province, "kind": account.kind, "name": account.name,
            "opened_seq": account.opened_seq, "frozen_by": account.frozen_by}


def _asset(asset: Asset, totals: dict[str, int]) -> dict:
    instrument = INSTRUMENTS.get(asset.instrument)
    return {"id": asset.id, "instrument": asset.instrument, "name": instrument.name if instrument else "",
            "unit": instrument.unit if instrument else "", "decimals": asset.decimals,
            "province": asset.province, "issuer": asset.issuer, "attributes": json.loads(asset.attributes),
            "defined_seq": asset.defined_seq, "expires_on": asset.expires_on, "expired_seq": asset.expired_seq,
            "last_serial": asset.next_serial - 1 if is_serialised(asset) else None,
            "totals": {name: format_units(units, asset.decimals) for name, units in totals.items()}}


def _trade(trade: Trade, decimals: int) -> dict:
    return {"id": trade.id, "seq": trade.seq, "asset": trade.asset,
            "quantity": format_units(trade.quantity, decimals), "price": trade.price,
            "amount": format_units(trade.amount, CNY_DECIMALS), "seller": trade.seller, "buyer": trade.buyer,
            "seller_exchange": trade.seller_exchange, "buyer_exchange": trade.buyer_exchange,
            "status": trade.status, "expires_at": trade.expires_at, "closed_seq": trade.closed_seq}


def _hold(hold: Hold, decimals: int | None) -> dict:
    whole = hold.asset is None
    return {"id": hold.id, "kind": hold.kind, "account": hold.account, "asset": hold.asset,
            "quantity": None if whole else format_units(hold.quantity, decimals or 0),
            "details": json.loads(hold.details), "created_seq": hold.created_seq,
            "released_seq": hold.released_seq, "open": hold.released_seq is None}


def _principals(session: Session, principals: list[Principal]) -> list[dict]:
    names = [p.name for p in principals]
    keys: dict[str, list[dict]] = {name: [] for name in names}
    if names:
        rows = session.execute(select(PrincipalKey).where(PrincipalKey.principal.in_(names))
                               .order_by(PrincipalKey.from_seq, PrincipalKey.verifier)).scalars()
        for key in rows:
            keys[key.principal].append({"key": key.verifier, "from_seq": key.from_seq, "until_seq": key.until_seq})
    return [{"name": p.name, "role": p.role, "province": p.province, "instruments": json.loads(p.instruments),
             "display_name": p.display_name, "added_seq": p.added_seq, "keys": keys[p.name]}
            for p in principals]


# -- accounts ----------------------------------------------------------------------------------


@blp.route("/accounts")
class Accounts(MethodView):
    @blp.query(AccountsQuery)
    @blp.response(200, AccountPageSchema)
    @blp.errors(401)
    def get(self, query: dict):
        """Accounts by id; a provincial principal sees its own province's only."""
        scope = Scope.current()
        statement = scope.restrict(select(Account), Account.id)
        if "province" in query:
            statement = statement.where(Account.province == query["province"])
        if "kind" in query:
            statement = statement.where(Account.kind == query["kind"])
        with get_store().reader() as session:
            return page(session, statement, order=[Account.id], shape=[str], query=query,
                        key=lambda row: [row[0].id], render=lambda rows: [_account(r[0]) for r in rows])


@blp.route("/accounts/<account_id>")
class AccountDetail(MethodView):
    @blp.response(200, AccountDetailSchema)
    @blp.errors(401, 404)
    def get(self, account_id: str):
        """An account with its balance of every asset it holds or held: total, available,
        frozen, pledged and held (by pending trades), as decimal strings."""
        scope = Scope.current()
        with get_store().reader() as session:
            account = _visible_account(session, scope, account_id)
            rows = session.execute(select(Balance, Asset.decimals, Asset.instrument)
                                   .join(Asset, Asset.id == Balance.asset)
                                   .where(Balance.account == account.id).order_by(Balance.asset)).all()
        balances = []
        for balance, decimals, instrument in rows:
            available = balance.total - balance.frozen - balance.pledged - balance.held
            balances.append({"asset": balance.asset, "instrument": instrument, "decimals": decimals,
                             **{name: format_units(units, decimals) for name, units in (
                                 ("total", balance.total), ("available", available), ("frozen", balance.frozen),
                                 ("pledged", balance.pledged), ("held", balance.held))}})
        return {**_account(account), "balances": balances}


@blp.route("/accounts/<account_id>/history")
class AccountHistory(MethodView):
    @blp.query(HistoryQuery)
    @blp.response(200, PostingPageSchema)
    @blp.errors(401, 404)
    def get(self, query: dict, account_id: str):
        """The account's postings in log order, each a signed decimal string, with its entry's
        time, actor and op, and the entry that reversed it if any."""
        scope = Scope.current()
        with get_store().reader() as session:
            account = _visible_account(session, scope, account_id)
            statement = (select(Posting, Asset.decimals).join(Asset, Asset.id == Posting.asset)
                         .where(Posting.account == account.id))
            if "asset" in query:
                statement = statement.where(Posting.asset == query["asset"])

            def render(rows):
                seqs = [posting.seq for posting, _ in rows]
                facts = entry_facts(session, seqs)
                reversed_by = dict(session.execute(select(Reversal.reversed_seq, Reversal.by_seq)
                                                   .where(Reversal.reversed_seq.in_(set(seqs)))).all()) if seqs else {}
                items = []
                for posting, decimals in rows:
                    fact = facts.get(posting.seq, {})
                    ops = fact.get("ops", [])
                    items.append({"seq": posting.seq, "n": posting.n, "op": posting.op,
                                  "operation": ops[posting.op] if posting.op < len(ops) else None,
                                  "actor": fact.get("actor"), "time": fact.get("time"), "asset": posting.asset,
                                  "amount": format_units(posting.amount, decimals),
                                  "reversed_by": reversed_by.get(posting.seq)})
                return items

            return page(session, statement, order=[Posting.seq, Posting.n], shape=[int, int], query=query,
                        key=lambda row: [row[0].seq, row[0].n], render=render)


# -- assets and serials ------------------------------------------------------------------------


@blp.route("/assets")
class Assets(MethodView):
    @blp.query(AssetsQuery)
    @blp.response(200, AssetPageSchema)
    @blp.errors(401)
    def get(self, query: dict):
        """Assets by id with their totals; every principal sees every asset."""
        statement = select(Asset)
        if "instrument" in query:
            statement = statement.where(Asset.instrument == query["instrument"])
        if "province" in query:
            statement = statement.where(Asset.province == query["province"])
        with get_store().reader() as session:
            def render(rows):
                totals = _asset_totals(session, [r[0].id for r in rows])
                return [_asset(r[0], totals[r[0].id]) for r in rows]

            return page(session, statement, order=[Asset.id], shape=[str], query=query,
                        key=lambda row: [row[0].id], render=render)


def _asset_or_404(session: Session, asset_id: str) -> Asset:
    known_id(asset_id, "UNKNOWN_ASSET", "asset")
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise Problem(404, "UNKNOWN_ASSET", f"there is no asset {asset_id!r}")
    return asset


@blp.route("/assets/<asset_id>")
class AssetDetail(MethodView):
    @blp.response(200, AssetSchema)
    @blp.errors(401, 404)
    def get(self, asset_id: str):
        """An asset with its attributes and totals: issued (net of reversals), outstanding
        (held by enterprises and individuals), surrendered, retired and expired."""
        with get_store().reader() as session:
            asset = _asset_or_404(session, asset_id)
            return _asset(asset, _asset_totals(session, [asset.id])[asset.id])


@blp.route("/assets/<asset_id>/serials/<serial>")
class SerialTrace(MethodView):
    @blp.query(SerialQuery)
    @blp.response(200, SerialTraceSchema)
    @blp.errors(401, 404)
    def get(self, query: dict, asset_id: str, serial: str):
        """The trace of one serial of a carbon credit: every move of a block holding it, from
        its issuance on, in log order, and who holds it now."""
        if not _SERIAL.fullmatch(serial) or int(serial) < 1:
            raise Problem(400, "INVALID_PARAMETER", f"a serial is a positive integer, not {serial[:40]!r}",
                          errors={"serial": ["a positive integer"]})
        number = int(serial)
        with get_store().reader() as session:
            asset = _asset_or_404(session, asset_id)
            if not is_serialised(asset) or number >= asset.next_serial:
                raise Problem(404, "UNKNOWN_SERIAL", f"serial {number} of {asset.id} was never issued")
            block = session.execute(select(SerialBlock).where(SerialBlock.asset == asset.id,
                                                              SerialBlock.start <= number)
                                    .order_by(SerialBlock.start.desc()).limit(1)).scalars().first()
            moves = select(SerialMove).where(SerialMove.asset == asset.id, SerialMove.start <= number,
                                             SerialMove.end >= number)
            issued = session.execute(select(func.min(SerialMove.seq)).where(
                SerialMove.asset == asset.id, SerialMove.start <= number, SerialMove.end >= number,
                SerialMove.kind == "issue")).scalar()
            if block is None or block.end < number or issued is None:  # cannot happen: a projection is broken
                raise Problem(404, "UNKNOWN_SERIAL", f"serial {number} of {asset.id} is not held by any account")

            def render(rows):
                facts = entry_facts(session, [r[0].seq for r in rows])
                return [{"seq": m.seq, "n": m.n, "time": facts.get(m.seq, {}).get("time"), "kind": m.kind,
                         "from_account": m.from_account, "to_account": m.to_account,
                         "block": f"{asset.id}-{m.start}-{m.end}"} for (m,) in rows]

            moved = page(session, moves, order=[SerialMove.seq, SerialMove.n], shape=[int, int], query=query,
                         key=lambda row: [row[0].seq, row[0].n], render=render)
        holder = block.account
        kind, _, local = holder.partition(":")[2].partition(":")
        status = local if kind == "SINK" else "reversed" if kind == "ISS" else "held"
        return {"asset": asset.id, "serial": number, "issued_seq": issued, "holder": holder,
                "block": f"{asset.id}-{block.start}-{block.end}", "status": status, **moved}


# -- trades, pledges, freezes, obligations -----------------------------------------------------


@blp.route("/trades")
class Trades(MethodView):
    @blp.query(TradesQuery)
    @blp.response(200, TradePageSchema)
    @blp.errors(401)
    def get(self, query: dict):
        """Trades in log order (``?status=pending`` for those waiting for the other province);
        a provincial principal sees those where its province is a party."""
        scope = Scope.current()
        statement = scope.restrict(select(Trade, Asset.decimals).join(Asset, Asset.id == Trade.asset),
                                   Trade.seller, Trade.buyer)
        for name in ("status", "asset"):
            if name in query:
                statement = statement.where(getattr(Trade, name) == query[name])
        if "account" in query:
            statement = statement.where((Trade.seller == query["account"]) | (Trade.buyer == query["account"]))
        with get_store().reader() as session:
            return page(session, statement, order=[Trade.seq, Trade.id], shape=[int, str], query=query,
                        key=lambda row: [row[0].seq, row[0].id], render=lambda rows: [_trade(*r) for r in rows])


@blp.route("/trades/<trade_id>")
class TradeDetail(MethodView):
    @blp.response(200, TradeSchema)
    @blp.errors(401, 404)
    def get(self, trade_id: str):
        """One trade."""
        scope = Scope.current()
        known_id(trade_id, "UNKNOWN_TRADE", "trade")
        with get_store().reader() as session:
            row = session.execute(select(Trade, Asset.decimals).join(Asset, Asset.id == Trade.asset)
                                  .where(Trade.id == trade_id)).first()
        if row is None or not scope.sees_any(row[0].seller, row[0].buyer):
            raise Problem(404, "UNKNOWN_TRADE", f"there is no trade {trade_id!r}")
        return _trade(*row)


def _holds(kind: str, query: dict) -> dict:
    scope = Scope.current()
    statement = scope.restrict(select(Hold, Asset.decimals).outerjoin(Asset, Asset.id == Hold.asset)
                               .where(Hold.kind == kind), Hold.account)
    for name in ("account", "asset"):
        if name in query:
            statement = statement.where(getattr(Hold, name) == query[name])
    if "open" in query:
        statement = statement.where(Hold.released_seq.is_(None) if query["open"] else Hold.released_seq.is_not(None))
    with get_store().reader() as session:
        return page(session, statement, order=[Hold.created_seq, Hold.id], shape=[int, str], query=query,
                    key=lambda row: [row[0].created_seq, row[0].id], render=lambda rows: [_hold(*r) for r in rows])


@blp.route("/pledges")
class Pledges(MethodView):
    @blp.query(HoldsQuery)
    @blp.response(200, HoldPageSchema)
    @blp.errors(401)
    def get(self, query: dict):
        """Pledges (质押) in the order they were made; ``?open=true`` for those not released."""
        return _holds("pledge", query)


@blp.route("/freezes")
class Freezes(MethodView):
    @blp.query(HoldsQuery)
    @blp.response(200, HoldPageSchema)
    @blp.errors(401)
    def get(self, query: dict):
        """Freezes (司法冻结) of quantities or of whole accounts (``asset`` null), in order."""
        return _holds("freeze", query)


@blp.route("/obligations")
class Obligations(MethodView):
    @blp.query(ObligationsQuery)
    @blp.response(200, ObligationPageSchema)
    @blp.errors(401)
    def get(self, query: dict):
        """What accounts owe each other for clearing between provinces, in log order; a
        provincial principal sees those where its province is debtor or creditor."""
        scope = Scope.current()
        statement = scope.restrict(select(Obligation), Obligation.debtor, Obligation.creditor)
        for name in ("pool", "status", "debtor", "creditor"):
            if name in query:
                statement = statement.where(getattr(Obligation, name) == query[name])
        with get_store().reader() as session:
            return page(session, statement, order=[Obligation.source_seq, Obligation.id], shape=[int, str],
                        query=query, key=lambda row: [row[0].source_seq, row[0].id],
                        render=lambda rows: [obligation_item(r[0]) for r in rows])


# -- principals --------------------------------------------------------------------------------


@blp.route("/principals")
class Principals(MethodView):
    @blp.query(PrincipalsQuery)
    @blp.response(200, PrincipalPageSchema)
    @blp.errors(401, 403)
    def get(self, query: dict):
        """Principals by name with their key periods (admin and auditor only)."""
        scope = Scope.current()
        if not scope.sees_all:
            raise Problem(403, "FORBIDDEN_ROLE", f"a {scope.principal.role} may not list principals")
        statement = select(Principal)
        for name in ("role", "province"):
            if name in query:
                statement = statement.where(getattr(Principal, name) == query[name])
        with get_store().reader() as session:
            return page(session, statement, order=[Principal.name], shape=[str], query=query,
                        key=lambda row: [row[0].name],
                        render=lambda rows: _principals(session, [r[0] for r in rows]))


@blp.route("/principals/<name>")
class PrincipalDetail(MethodView):
    @blp.response(200, PrincipalSchema)
    @blp.errors(401, 403, 404)
    def get(self, name: str):
        """A principal with its keys and the seqs each signs for; anyone reads its own."""
        scope = Scope.current()
        if not scope.sees_all and name != scope.principal.name:
            raise Problem(403, "FORBIDDEN_ROLE", f"a {scope.principal.role} may read its own principal only")
        known_id(name, "UNKNOWN_PRINCIPAL", "principal")
        with get_store().reader() as session:
            principal = session.get(Principal, name)
            if principal is None:
                raise Problem(404, "UNKNOWN_PRINCIPAL", f"there is no principal {name!r}")
            return _principals(session, [principal])[0]
