"""The context an operation runs in: reads of the projections, and the only ways to change them.

Movements go through :meth:`Context.move` and :meth:`Context.issue`, which post balanced pairs
(an asset's postings in an entry always sum to zero) and move serial blocks for carbon credits.
Holds go through :meth:`Context.hold` and :meth:`Context.release`. After each operation the
balance rules of every account it touched are checked.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from contracts.errors import Refused
from contracts.instruments import CNY, INSTRUMENTS
from contracts.quantities import format_units
from ledger.entry import parse_time
from ledger.projections import Account, Asset, Balance, Hold, Posting, Principal, SerialBlock, SerialMove

SHANGHAI = ZoneInfo("Asia/Shanghai")
NON_NEGATIVE_KINDS = frozenset({"ENT", "IND"})
BALANCE_LIMIT = 2**63 - 1
"""What a balance column (BIGINT) can hold."""
HOLD_COLUMNS = {"freeze": "frozen", "pledge": "pledged", "trade": "held"}


@dataclass
class Context:
    session: Session
    seq: int
    time: str
    actor: str
    principal: Principal | None
    """None for the ledger's own entries."""
    op_index: int = 0
    _postings: int = 0
    _moves: int = 0
    _touched: set[tuple[str, str]] = field(default_factory=set)

    # -- who is acting ---------------------------------------------------------------------

    @property
    def role(self) -> str:
        return "ledger" if self.principal is None else self.principal.role

    @property
    def local_date(self) -> str:
        """The entry's date in Asia/Shanghai, ``YYYY-MM-DD``."""
        return parse_time(self.time).astimezone(SHANGHAI).date().isoformat()

    @property
    def moment(self) -> datetime:
        return parse_time(self.time)

    def require_province(self, account: Account) -> None:
        """A principal with a province acts on that province's accounts only (OWASP API1)."""
        if self.principal is None or self.principal.province is None:
            return
        if account.province != self.principal.province:
            raise Refused("FORBIDDEN_PROVINCE",
                          f"{self.actor} ({self.principal.province}) may not act on account "
                          f"{account.id} of {account.province}")

    def new_id(self, prefix: str) -> str:
        """A deterministic id for a record this op creates: ``<prefix>-<seq>-<op index>``."""
        return f"{prefix}-{self.seq}-{self.op_index}"

    # -- reads -----------------------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        account = self.session.get(Account, account_id) if isinstance(account_id, str) else None
        if account is None:
            raise Refused("UNKNOWN_ACCOUNT", f"there is no account {account_id!r}")
        return account

    def asset(self, asset_id: str) -> Asset:
        asset = self.session.get(Asset, asset_id) if isinstance(asset_id, str) else None
        if asset is None and asset_id == CNY:
            asset = Asset(id=CNY, instrument=CNY, province="CN", attributes="{}", decimals=2,
                          issuer="ledger", defined_seq=self.seq)
            self.session.add(asset)
        if asset is None:
            raise Refused("UNKNOWN_ASSET", f"there is no asset {asset_id!r}")
        if asset.expired_seq is not None:
            raise Refused("ASSET_EXPIRED", f"asset {asset_id} expired at seq {asset.expired_seq}")
        return asset

    def balance(self, account_id: str, asset_id: str) -> Balance:
        balance = self.session.get(Balance, (account_id, asset_id))
        if balance is None:
            balance = Balance(account=account_id, asset=asset_id)
            self.session.add(balance)
        return balance

    def hold_record(self, hold_id: str, kind: str) -> Hold:
        hold = self.session.get(Hold, hold_id) if isinstance(hold_id, str) else None
        if hold is None or hold.kind != kind:
            raise Refused(f"UNKNOWN_{kind.upper()}", f"there is no {kind} {hold_id!r}")
        if hold.released_seq is not None:
            raise Refused("ALREADY_RELEASED", f"{kind} {hold_id} was released at seq {hold.released_seq}")
        return hold

    def sink(self, province: str, name: str) -> Account:
        """The province's sink for surrendered, retired or expired units, opened on first use."""
        account_id = f"{province}:SINK:{name}"
        account = self.session.get(Account, account_id)
        if account is None:
            account = Account(id=account_id, province=province, kind="SINK", name=name, opened_seq=self.seq)
            self.session.add(account)
        return account

    # -- movements -------------------------------------------------------------------------

    def post(self, account: Account, asset: Asset, amount: int, *, lapse: bool = False) -> None:
        """Change a balance. ``lapse`` is for expiry, which a judicial freeze does not stop."""
        if amount < 0 and account.kind == "SINK":
            raise Refused("SINK_RECEIVES_ONLY", f"nothing ever leaves {account.id}")
        if amount < 0 and account.frozen_by is not None and not lapse:
            raise Refused("ACCOUNT_FROZEN", f"account {account.id} is frozen ({account.frozen_by})")
        balance = self.balance(account.id, asset.id)
        if abs(balance.total + amount) > BALANCE_LIMIT:
            raise Refused("INVALID_QUANTITY", f"the balance of {account.id} in {asset.id} would exceed what the ledger keeps")
        balance.total += amount
        self.session.add(Posting(seq=self.seq, n=self._postings, op=self.op_index,
                                 account=account.id, asset=asset.id, amount=amount))
        self._postings += 1
        self._touched.add((account.id, asset.id))

    def move(self, asset: Asset, units: int, source: Account, target: Account, *, kind: str,
             serials: list[tuple[int, int]] | None = None) -> list[str]:
        """Move ``units`` of ``asset``; for carbon credits also the serial blocks (the ones
        named, or the lowest the source holds). Returns the serial blocks moved."""
        if source.id == target.id:
            raise Refused("SAME_ACCOUNT", f"cannot move {asset.id} from {source.id} to itself")
        self.post(source, asset, -units)
        self.post(target, asset, units)
        if not is_serialised(asset):
            return []
        blocks = serials if serials is not None else self._lowest_serials(asset, source, units)
        if serials is None and sum(end - start + 1 for start, end in blocks) < units:
            raise Refused("INSUFFICIENT_BALANCE", f"{source.id} holds fewer than {units} serials of {asset.id}")
        if sum(end - start + 1 for start, end in blocks) != units:
            raise Refused("SERIALS_MISMATCH", f"the serials named do not add up to the quantity {units}")
        for start, end in blocks:
            self.move_serials(asset, start, end, source, target, kind)
        return [f"{asset.id}-{start}-{end}" for start, end in blocks]

    def issue(self, asset: Asset, units: int, issuer: Account, holder: Account) -> list[str]:
        """Create ``units`` new units: the issuing account goes negative by as much."""
        self.post(issuer, asset, -units)
        self.post(holder, asset, units)
        if not is_serialised(asset):
            return []
        start, end = asset.next_serial, asset.next_serial + units - 1
        asset.next_serial = end + 1
        self.session.add(asset)
        self.session.add(SerialBlock(asset=asset.id, start=start, end=end, account=holder.id))
        self._record_move(asset, start, end, issuer, holder, "issue")
        return [f"{asset.id}-{start}-{end}"]

    def _lowest_serials(self, asset: Asset, account: Account, units: int) -> list[tuple[int, int]]:
        blocks, wanted = [], units
        rows = self.session.exec(select(SerialBlock).where(
            SerialBlock.asset == asset.id, SerialBlock.account == account.id).order_by(SerialBlock.start))
        for block in rows.scalars():
            take = min(wanted, block.end - block.start + 1)
            blocks.append((block.start, block.start + take - 1))
            wanted -= take
            if not wanted:
                break
        return blocks

    def move_serials(self, asset: Asset, start: int, end: int, source: Account, target: Account,
                      kind: str) -> None:
        """Give [start, end] to the target: the source's blocks covering it (one or several
        adjacent ones) are split around it."""
        first = self.session.exec(select(SerialBlock).where(
            SerialBlock.asset == asset.id, SerialBlock.start <= start)
            .order_by(SerialBlock.start.desc()).limit(1)).scalars().first()
        following = self.session.exec(select(SerialBlock).where(
            SerialBlock.asset == asset.id, SerialBlock.start > start, SerialBlock.start <= end)
            .order_by(SerialBlock.start)).scalars().all()
        blocks = ([first] if first is not None else []) + list(following)
        covered = start
        for block in blocks:
            if block.account != source.id or block.start > covered or block.end < covered:
                break
            covered = block.end + 1
        if not blocks or covered <= end:
            raise Refused("SERIALS_NOT_HELD", f"{source.id} does not hold {asset.id}-{start}-{end}")
        before, after = (blocks[0].start, start - 1), (end + 1, blocks[-1].end)
        for block in blocks:
            self.session.delete(block)
        self.session.flush()
        for part_start, part_end in (before, after):
            if part_start <= part_end:
                self.session.add(SerialBlock(asset=asset.id, start=part_start, end=part_end, account=source.id))
        self.session.add(SerialBlock(asset=asset.id, start=start, end=end, account=target.id))
        self._record_move(asset, start, end, source, target, kind)

    def _record_move(self, asset: Asset, start: int, end: int, source: Account, target: Account,
                     kind: str) -> None:
        self.session.add(SerialMove(seq=self.seq, n=self._moves, asset=asset.id, start=start, end=end,
                                    from_account=source.id, to_account=target.id, kind=kind))
        self._moves += 1

    # -- holds -----------------------------------------------------------------------------

    def hold(self, kind: str, account: Account, asset: Asset, units: int, details: dict[str, Any],
             *, hold_id: str | None = None) -> Hold:
        if account.kind not in NON_NEGATIVE_KINDS:
            raise Refused("INVALID_ACCOUNT", f"only enterprises' and individuals' holdings are held, not {account.kind}")
        if account.frozen_by is not None and kind != "freeze":
            raise Refused("ACCOUNT_FROZEN", f"account {account.id} is frozen ({account.frozen_by})")
        balance = self.balance(account.id, asset.id)
        setattr(balance, HOLD_COLUMNS[kind], getattr(balance, HOLD_COLUMNS[kind]) + units)
        hold = Hold(id=hold_id or self.new_id(kind[0].upper()), kind=kind, account=account.id, asset=asset.id,
                    quantity=units, details=canonical_json(details), created_seq=self.seq)
        self.session.add(hold)
        self._touched.add((account.id, asset.id))
        return hold

    def release(self, hold: Hold) -> None:
        if hold.asset is not None:
            balance = self.balance(hold.account, hold.asset)
            column = HOLD_COLUMNS[hold.kind]
            setattr(balance, column, getattr(balance, column) - hold.quantity)
        hold.released_seq = self.seq
        self.session.add(hold)

    # -- rules -----------------------------------------------------------------------------

    def check_balances(self) -> None:
        """ENT and IND accounts never go below zero, counting frozen, pledged and held units."""
        for account_id, asset_id in sorted(self._touched):
            account = self.session.get(Account, account_id)
            if account.kind not in NON_NEGATIVE_KINDS:
                continue
            balance = self.session.get(Balance, (account_id, asset_id))
            available = balance.total - balance.frozen - balance.pledged - balance.held
            if available < 0:
                asset = self.session.get(Asset, asset_id)
                raise Refused("INSUFFICIENT_BALANCE",
                              f"{account_id} would have {format_units(available, asset.decimals)} of "
                              f"{asset_id} available; it may not go below zero")
        self._touched.clear()


SERIALISED = frozenset({"CHTF", "CQCER"})


def is_serialised(asset: Asset) -> bool:
    return asset.instrument in SERIALISED


def require_lifecycle(asset: Asset, op: str) -> None:
    if op not in INSTRUMENTS[asset.instrument].ops:
        raise Refused("NOT_ALLOWED_FOR_INSTRUMENT", f"{asset.instrument} assets cannot be used for {op}")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
