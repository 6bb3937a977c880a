"""All of a command's operations or none (contracts/commands.py submit/apply_entry), the next seq
without a gap, and idempotency by (actor, command id)."""

import pytest
from contract_book import CHTF, CQ_C, PDR_SC, SC_A, SC_B

from sqlalchemy import text

from contracts.commands import submit, submit_ledger
from contracts.errors import Refused
from ledger.keys import SigningKey
from ledger.projections import Asset


def transfer(quantity, asset=PDR_SC, source=SC_A, target=SC_B):
    return {"op": "transfer", "asset": asset, "from": source, "to": target, "quantity": quantity}


def test_a_refused_later_op_undoes_the_earlier_ones(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "10"})
    book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "100"})
    size = book.size()
    cases = [
        ("sc-exchange", [transfer("5"), transfer("6")], 1, "INSUFFICIENT_BALANCE"),
        ("sc-exchange", [{"op": "account.open", "account": "SC:IND:p-50", "name": "x"},
                         {"op": "cny.deposit", "account": "SC:IND:p-50", "amount": "5"},
                         {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "10.001",
                          "pledgee": "bank"}], 2, "INSUFFICIENT_BALANCE"),
        ("sc-exchange", [{"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1", "seller": SC_A,
                          "buyer": CQ_C},
                         {"op": "trade.confirm", "trade": "T-0-0"}], 1, "UNKNOWN_TRADE"),
        ("sc-exchange", [{"op": "account.freeze", "account": SC_A, "reason": "court"}, transfer("1")],
         1, "ACCOUNT_FROZEN"),
        ("sc-exchange", [{"op": "account.freeze", "account": SC_A, "asset": PDR_SC, "quantity": "1",
                          "reason": "court"}, transfer("1"), transfer("9")], 2, "INSUFFICIENT_BALANCE"),
        ("sc-sthj", [{"op": "issue", "asset": CHTF, "to": SC_A, "quantity": "10"},
                     {"op": "issue", "asset": CHTF, "to": SC_B, "quantity": "5"},
                     {"op": "issue", "asset": CHTF, "to": CQ_C, "quantity": "1"}], 2, "FORBIDDEN_PROVINCE"),
        ("sc-sthj", [{"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2030}},
                     {"op": "issue", "asset": "EUR-SC-2030", "to": SC_A, "quantity": "1"},
                     {"op": "issue", "asset": "EUR-SC-2030", "to": SC_A, "quantity": "0"}], 2, "INVALID_QUANTITY"),
        ("sc-exchange", [{"op": "principal.rotate_key", "name": "sc-exchange",
                          "key": str(SigningKey.generate("sc-exchange").verifier)},
                         {"op": "no.such.op"}], 1, "UNKNOWN_OP"),
        ("sc-exchange", [{"op": "cny.deposit", "account": SC_B, "amount": "1"},
                         {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1", "seller": SC_A,
                          "buyer": SC_B},
                         {"op": "cny.withdraw", "account": SC_A, "amount": "1.01"}], 2, "INSUFFICIENT_BALANCE"),
    ]
    for actor, ops, index, code in cases:
        refusal = book.refused(actor, *ops, snapshot=True)      # every table compared, log included
        assert (refusal.code, refusal.op) == (code, index), ops
    assert book.size() == size
    assert book.get(Asset, "EUR-SC-2030") is None and book.get(Asset, CHTF).next_serial == 1
    # the next command gets the next seq, without a gap
    assert book.do("sc-exchange", transfer("5")).seq == size
    assert book.store.entry(size).entry["command"]["ops"] == [transfer("5")]


def refusal_of(writer, command, signature) -> tuple[str, int | None]:
    """Submit inside an open writer; answer the refusal's (code, op), keeping no reference to the
    exception (as the batch endpoint does: see the bug test below for what a kept one does)."""
    try:
        outcome = submit(writer, command=command, signature=signature)
    except Refused as refusal:
        return refusal.code, refusal.op
    raise AssertionError(f"appended at seq {outcome.seq}")


def test_a_refused_command_inside_a_batch_leaves_no_trace(standard_book):
    book = standard_book
    book.do("sc-sthj", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "10"})
    size = book.size()
    refused_command = book.command("sc-exchange", transfer("3"), transfer("8"), id="batch-2")
    with book.store.writer() as writer:
        first = submit(writer, command=(c := book.command("sc-exchange", transfer("2"), id="batch-1")),
                       signature=book.sign(c))
        before, pending = book.snapshot(writer.session), len(writer.pending)
        assert refusal_of(writer, refused_command, book.sign(refused_command)) == ("INSUFFICIENT_BALANCE", 1)
        assert book.snapshot(writer.session) == before and len(writer.pending) == pending
        assert writer.find("sc-exchange", "batch-2") is None
        third = submit(writer, command=(c := book.command("sc-exchange", transfer("1"), id="batch-3")),
                       signature=book.sign(c))
    assert (first.seq, third.seq) == (size, size + 1)
    assert book.size() == size + 2
    assert book.total(SC_A, PDR_SC) == 7000 and book.total(SC_B, PDR_SC) == 3000
    # the refused command's id was never used: it may be sent again, with new content
    again = book.do("sc-exchange", transfer("7"), id="batch-2")
    assert again.seq == size + 2 and not again.replayed


def test_same_actor_and_id_replays_the_original_outcome(standard_book):
    book = standard_book
    command = book.command("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "10"}, id="dep-1")
    signature = book.sign(command)
    first = book.send(command, signature)
    size = book.size()
    assert not first.replayed
    for again in (book.send(command, signature),
                  book.send(dict(reversed(list(command.items()))))):       # same content, other key order
        assert again.replayed
        assert (again.seq, again.leaf_hash, again.entry, again.results) == (
            first.seq, first.leaf_hash, first.entry, first.results)
    assert book.size() == size
    assert book.total(SC_A, "CNY") == 1000                                  # applied once
    # a replay is still a signed request: a bad signature gets nothing
    assert book.refused_command(command, "AAAA").code == "BAD_SIGNATURE"
    assert book.refused_command(command, key=book.keys["cq-exchange"]).code == "BAD_SIGNATURE"

    other = {**command, "ops": [{"op": "cny.deposit", "account": SC_A, "amount": "11"}]}
    refusal = book.refused_command(other, snapshot=True)
    assert refusal.code == "DUPLICATE_COMMAND_ID"
    # another actor's command ids are its own
    assert book.do("cq-exchange", {"op": "cny.deposit", "account": CQ_C, "amount": "1"}, id="dep-1").seq == size
    # after a key rotation the original answer is still the answer
    book.do("sc-exchange", {"op": "principal.rotate_key", "name": "sc-exchange",
                            "key": str((new := SigningKey.generate("sc-exchange")).verifier)})
    book.keys["sc-exchange"] = new
    assert book.send(command, signature).seq == first.seq


def test_replay_inside_one_transaction_and_for_the_ledger(standard_book):
    book = standard_book
    command = book.command("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "1"})
    with book.store.writer() as writer:
        first = submit(writer, command=command, signature=book.sign(command))
        second = submit(writer, command=command, signature=book.sign(command))
        assert second.replayed and (second.seq, second.results) == (first.seq, first.results)
        other = {**command, "ops": [{"op": "cny.deposit", "account": SC_A, "amount": "2"}]}
        with pytest.raises(Refused) as refusal:
            submit(writer, command=other, signature=book.sign(other))
        assert refusal.value.code == "DUPLICATE_COMMAND_ID"
    assert book.size() == first.seq + 1 and book.total(SC_A, "CNY") == 100

    op = {"op": "principal.add", "name": "cq-monitor", "role": "monitor", "province": "CQ",
          "key": str(SigningKey.generate("cq-monitor").verifier)}
    original = book.ledger(op, id="console-1")
    replay = book.ledger(op, id="console-1")
    assert replay.replayed and (replay.seq, replay.results) == (original.seq, original.results)
    assert book.ledger_refused({**op, "role": "auditor", "province": None},
                               id="console-1").code == "DUPLICATE_COMMAND_ID"
    with book.store.writer() as writer:
        with pytest.raises(Refused):
            submit_ledger(writer, "console-1", [{**op, "display_name": "x"}])
    assert book.size() == original.seq + 1


def test_bug_a_refused_command_kept_alive_leaves_its_balances_in_the_batch(standard_book):
    book = standard_book
    book.do("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "10"})
    kept = []
    with book.store.writer() as writer:
        refused = book.command("sc-exchange", {"op": "cny.deposit", "account": SC_B, "amount": "100"},
                               {"op": "cny.withdraw", "account": SC_A, "amount": "10.01"})
        try:
            submit(writer, command=refused, signature=book.sign(refused))
        except Refused as refusal:
            kept.append(refusal)          # e.g. a batch answer that keeps each command's exception
        following = book.command("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "1"})
        submit(writer, command=following, signature=book.sign(following))
    # A had 10.00 and got 1.00; the refused withdrawal of 10.01 must leave no trace
    with book.session() as session:
        posted = session.execute(text("SELECT COALESCE(SUM(amount), 0) FROM postings "
                                      "WHERE account = :a AND asset = 'CNY'"), {"a": SC_A}).scalar_one()
    assert (book.total(SC_A, "CNY"), posted) == (1100, 1100)
