"""Principals and keys (contracts/principals.py), the command envelope and the role matrix
(contracts/commands.py)."""

import json

from contract_book import CQ_C, PDR_SC, SC_A, SC_B, SC_ISS

from contracts.commands import MAX_OPS
from ledger.encoding import b64encode
from ledger.keys import SigningKey
from ledger.projections import Account, Principal, PrincipalKey


def add_op(name, role, province=None, instruments=None, key=None, **extra):
    op = {"op": "principal.add", "name": name, "role": role,
          "key": key or str(SigningKey.generate(name).verifier), **extra}
    if province is not None:
        op["province"] = province
    if instruments is not None:
        op["instruments"] = instruments
    return op


def test_principal_add_roles_provinces_and_home_accounts(book):
    assert book.add("admin", "admin").results == [{"principal": "admin"}]
    assert book.add("sc-sthj", "issuer", "SC", ["PDR", "CHTF"]).results == [
        {"principal": "sc-sthj", "account": "SC:ISS:sc-sthj"}]
    assert book.add("cq-sthj", "issuer", "CQ", ["CQCER"]).results == [
        {"principal": "cq-sthj", "account": "CQ:ISS:cq-sthj"}]
    assert book.add("sc-exchange", "operator", "SC").results == [
        {"principal": "sc-exchange", "account": "SC:EXC:sc-exchange"}]
    assert book.add("cq-finance", "finance", "CQ").results == [
        {"principal": "cq-finance", "account": "CQ:FIN:treasury"}]
    assert book.add("sc-monitor", "monitor", "SC").results == [{"principal": "sc-monitor"}]
    assert book.add("audit-office", "auditor").results == [{"principal": "audit-office"}]
    # admin may add principals too, with a signed command
    outcome = book.do("admin", add_op("sc-finance", "finance", "SC", display_name="四川省财政厅"))
    assert outcome.results == [{"principal": "sc-finance", "account": "SC:FIN:treasury"}]

    accounts = {a.id: a for a in book.rows(Account)}
    assert set(accounts) == {"SC:ISS:sc-sthj", "CQ:ISS:cq-sthj", "SC:EXC:sc-exchange",
                             "CQ:FIN:treasury", "SC:FIN:treasury"}
    assert (accounts["SC:ISS:sc-sthj"].kind, accounts["SC:ISS:sc-sthj"].province) == ("ISS", "SC")
    assert (accounts["SC:EXC:sc-exchange"].kind, accounts["SC:EXC:sc-exchange"].province) == ("EXC", "SC")
    assert (accounts["CQ:FIN:treasury"].kind, accounts["CQ:FIN:treasury"].province) == ("FIN", "CQ")
    assert accounts["SC:FIN:treasury"].name == "四川省财政厅"

    principals = {p.name: p for p in book.rows(Principal)}
    assert principals["sc-sthj"].role == "issuer" and principals["sc-sthj"].province == "SC"
    assert json.loads(principals["sc-sthj"].instruments) == ["CHTF", "PDR"]
    assert principals["admin"].province is None and principals["audit-office"].province is None
    keys = book.rows(PrincipalKey, PrincipalKey.principal == "sc-sthj")
    assert [k.verifier for k in keys] == [str(book.keys["sc-sthj"].verifier)]
    assert keys[0].until_seq is None


PRINCIPAL_ADD_REFUSALS = [
    (add_op("x-issuer", "issuer", instruments=["PDR"]), "INVALID_OP"),             # no province
    (add_op("x-operator", "operator"), "INVALID_OP"),
    (add_op("x-admin", "admin", "SC"), "INVALID_OP"),                              # admin has no province
    (add_op("x-auditor", "auditor", "SC"), "INVALID_OP"),
    (add_op("x-issuer", "issuer", "SC"), "INVALID_OP"),                            # no instruments
    (add_op("x-issuer", "issuer", "SC", ["CNX"]), "INVALID_OP"),
    (add_op("x-operator", "operator", "SC", ["PDR"]), "INVALID_OP"),               # only issuers have some
    (add_op("x-root", "superuser"), "INVALID_OP"),
    (add_op("ledger", "admin"), "INVALID_OP"),
    (add_op("x-admin", "admin", nickname="x"), "INVALID_OP"),                      # unknown field
    (add_op("x-issuer", "issuer", "CQ", ["CHTF"]), "FORBIDDEN_INSTRUMENT"),       # 碳惠天府 is SC's
    (add_op("x-issuer", "issuer", "SC", ["PDR", "CQCER"]), "FORBIDDEN_INSTRUMENT"),  # 碳惠通 is CQ's
    (add_op("admin", "admin"), "PRINCIPAL_EXISTS"),
    (add_op("x-admin", "admin", key=str(SigningKey.generate("someone").verifier)), "INVALID_KEY"),
    (add_op("x-admin", "admin", key="x-admin+00000000+AAAA"), "INVALID_KEY"),
]


def test_principal_add_refusals(book):
    book.add("admin", "admin")
    for op, code in PRINCIPAL_ADD_REFUSALS:
        refusal = book.ledger_refused(op)
        assert (refusal.code, refusal.op) == (code, 0), op
    # the same refusals for the admin's signed commands
    for op, code in PRINCIPAL_ADD_REFUSALS:
        assert book.refused("admin", op).code == code, op


def test_only_admin_and_the_ledger_add_principals(standard_book):
    book = standard_book
    for actor in ("sc-sthj", "sc-exchange", "sc-finance", "auditor"):
        assert book.refused(actor, add_op("x-admin", "admin")).code == "FORBIDDEN_ROLE"


def test_rotate_key_old_key_refused_new_key_accepted(standard_book):
    book = standard_book
    old = book.keys["sc-exchange"]
    new = SigningKey.generate("sc-exchange")
    outcome = book.do("sc-exchange", {"op": "principal.rotate_key", "name": "sc-exchange",
                                      "key": str(new.verifier)})
    assert outcome.results == [{"principal": "sc-exchange", "key": str(new.verifier),
                                "valid_from_seq": outcome.seq + 1}]
    periods = {k.verifier: (k.from_seq, k.until_seq) for k in
               book.rows(PrincipalKey, PrincipalKey.principal == "sc-exchange")}
    assert periods[str(old.verifier)][1] == outcome.seq + 1
    assert periods[str(new.verifier)] == (outcome.seq + 1, None)

    deposit = {"op": "cny.deposit", "account": SC_A, "amount": "1.00"}
    assert book.refused("sc-exchange", deposit, key=old).code == "BAD_SIGNATURE"
    book.keys["sc-exchange"] = new
    assert book.do("sc-exchange", deposit).seq == outcome.seq + 1

    # admin rotates anyone's key; others only their own
    newer = SigningKey.generate("sc-exchange")
    assert book.refused("sc-sthj", {"op": "principal.rotate_key", "name": "sc-exchange",
                                    "key": str(newer.verifier)}).code == "FORBIDDEN_ROLE"
    book.do("admin", {"op": "principal.rotate_key", "name": "sc-exchange", "key": str(newer.verifier)})
    assert book.refused("sc-exchange", deposit).code == "BAD_SIGNATURE"
    book.keys["sc-exchange"] = newer
    book.do("sc-exchange", deposit)
    # an auditor writes nothing, but may rotate its own key
    book.do("auditor", {"op": "principal.rotate_key", "name": "auditor",
                        "key": str(SigningKey.generate("auditor").verifier)})


def test_rotate_key_refusals(book):
    book.add("admin", "admin")
    book.add("sc-exchange", "operator", "SC")
    book.add("cq-exchange", "operator", "CQ")
    for name, key, code in [
        ("sc-exchange", str(book.keys["cq-exchange"].verifier), "INVALID_KEY"),   # registered already
        ("sc-exchange", str(book.keys["sc-exchange"].verifier), "INVALID_KEY"),   # the current one
        ("sc-exchange", str(SigningKey.generate("cq-exchange").verifier), "INVALID_KEY"),  # another's name
        ("sc-exchange", "sc-exchange+deadbeef+AAAA", "INVALID_KEY"),
        ("nobody", str(SigningKey.generate("nobody").verifier), "UNKNOWN_PRINCIPAL"),
    ]:
        refusal = book.refused("admin", {"op": "principal.rotate_key", "name": name, "key": key})
        assert refusal.code == code, (name, key)


def test_command_envelope_refusals(standard_book):
    book = standard_book
    op = {"op": "cny.deposit", "account": SC_A, "amount": "1.00"}
    cmd = book.command("sc-exchange", op)

    def code(command, signature=None, key=None):
        return book.refused_command(command, signature, key=key).code

    assert code({**cmd, "actor": "nobody"}, signature=book.sign(cmd)) == "UNKNOWN_ACTOR"
    assert code({**cmd, "actor": "ledger"}, signature=book.sign(cmd)) == "UNKNOWN_ACTOR"
    assert code(cmd, signature="not base64!") == "BAD_SIGNATURE"
    assert code(cmd, signature=12) == "BAD_SIGNATURE"
    assert code(cmd, signature=b64encode(b"\0" * 64)) == "BAD_SIGNATURE"
    assert code(cmd, key=book.keys["cq-exchange"]) == "BAD_SIGNATURE"
    assert code(cmd, key=SigningKey.generate("sc-exchange")) == "BAD_SIGNATURE"
    tampered = {**cmd, "ops": [{**op, "amount": "1000.00"}]}
    assert code(tampered, signature=book.sign(cmd)) == "BAD_SIGNATURE"
    assert code([cmd]) == "INVALID_COMMAND"
    assert code({**cmd, "extra": 1}) == "INVALID_COMMAND"
    assert code({**cmd, "id": ""}) == "INVALID_COMMAND"
    assert code({**cmd, "id": "-starts-with-dash"}) == "INVALID_COMMAND"
    assert code({**cmd, "id": "x" * 129}) == "INVALID_COMMAND"
    assert code({**cmd, "id": 7}) == "INVALID_COMMAND"
    assert code({**cmd, "ops": []}) == "INVALID_COMMAND"
    assert code({**cmd, "ops": op}) == "INVALID_COMMAND"
    assert code({**cmd, "ops": [op] * (MAX_OPS + 1)}) == "INVALID_COMMAND"
    refusal = book.refused_command({**cmd, "ops": [op, {"amount": "1"}]})
    assert (refusal.code, refusal.op) == ("INVALID_COMMAND", 1)
    refusal = book.refused("sc-exchange", op, {"op": "cny.mint", "account": SC_A})
    assert (refusal.code, refusal.op) == ("UNKNOWN_OP", 1)
    refusal = book.refused("sc-exchange", op, {**op, "memo": "x"})
    assert (refusal.code, refusal.op) == ("INVALID_OP", 1)
    assert book.do("sc-exchange", op, id="a.b:c@d/e+f=g-1").seq == book.size() - 1


ROLE_MATRIX = [
    ("auditor", {"op": "account.open", "account": "SC:IND:x", "name": "x"}),
    ("auditor", {"op": "cny.deposit", "account": SC_A, "amount": "1"}),
    ("sc-finance", {"op": "account.open", "account": "SC:IND:x", "name": "x"}),
    ("sc-finance", {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B, "quantity": "1"}),
    ("sc-exchange", {"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2026}}),
    ("sc-exchange", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"}),
    ("sc-exchange", {"op": "principal.add", "name": "x", "role": "admin", "key": "x"}),
    ("sc-exchange", {"op": "reverse", "seq": 1, "reason": "x"}),
    ("sc-exchange", {"op": "expire", "asset": PDR_SC}),
    ("sc-exchange", {"op": "trade.expire", "trade": "T-1-0"}),
    ("sc-sthj", {"op": "transfer", "asset": PDR_SC, "from": SC_ISS, "to": SC_A, "quantity": "1"}),
    ("sc-sthj", {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1", "seller": SC_A, "buyer": SC_B}),
    ("sc-sthj", {"op": "cny.deposit", "account": SC_A, "amount": "1"}),
    ("sc-sthj", {"op": "retire", "asset": PDR_SC, "account": SC_A, "quantity": "1", "purpose": "x",
                 "beneficiary": "y"}),
    ("sc-sthj", {"op": "account.freeze", "account": SC_A, "reason": "x"}),
    ("admin", {"op": "issue", "asset": PDR_SC, "to": SC_A, "quantity": "1"}),
    ("admin", {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B, "quantity": "1"}),
    ("admin", {"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2026}}),
    ("admin", {"op": "cny.deposit", "account": CQ_C, "amount": "1"}),
]


def test_a_role_never_uses_another_roles_operations(standard_book):
    for actor, op in ROLE_MATRIX:
        refusal = standard_book.refused(actor, op)
        assert (refusal.code, refusal.op) == ("FORBIDDEN_ROLE", 0), (actor, op)


def test_principal_fields_are_matched_whole(book):
    """Regression: PROVINCE and NAME were checked with marshmallow's Regexp, a prefix match, so
    "SCX" or "aBC" passed (found by these tests; fixed in contracts/fields.py ``whole``)."""
    book.add("admin", "admin")
    for op in [
        add_op("x-operator", "operator", "SCX"),    # a province is two capital letters
        add_op("y-operator", "operator", "SC1"),
        add_op("z-operator", "operator", "S\u0421"),  # a Cyrillic capital
        add_op("aBC", "admin"),                     # names are lower case
        add_op("a" + "b" * 70, "admin"),            # at most 64 characters
        add_op("abc\n", "admin", key=str(SigningKey.generate("abc").verifier)),
    ]:
        assert book.ledger_refused(op).code == "INVALID_OP", op
