"""Who may do what, and what the endpoint refuses, over HTTP on the real server.

* A role × province matrix: every op, tried by every principal (each provincial role in SC and in
  CQ, the admin, the auditor) against Sichuan's accounts. The expectation is computed from the
  spec's table (specs/ledger-api.md §1 and §4), not from the code: an allowed combination must
  be appended, a forbidden one refused with FORBIDDEN_ROLE or FORBIDDEN_PROVINCE (403), appending
  nothing.
* Malformed input of every kind, each with its status and code, appending nothing.
* A hypothesis strategy that mutates valid envelopes: never a 500, and the log never grows on
  an answer that is not 2xx.
"""

import itertools
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.keys import SigningKey
from support.world import (CHTF, CNY, CQ_A, EUR_SC, PDR_CQ, PDR_SC, SC_A, SC_B, ENGINES, World, check_problem,
                           enterprise, running_world)

pytestmark = pytest.mark.slow

GZ_A = enterprise("GZ", 1)


@pytest.fixture(scope="module", params=ENGINES)
def world(request, tmp_path_factory):
    with running_world(request.param, tmp_path_factory.mktemp("boundaries")) as world:
        # A third province (the rules must not assume two), whose exchange records trades with
        # Sichuan that wait for Sichuan's exchange; and a principal whose key others rotate.
        world.add_principal("gz-exchange", "operator", "GZ", in_process=True)
        world.add_principal("sc-victim", "monitor", "SC", in_process=True)
        world.ok("gz-exchange", {"op": "account.open", "account": GZ_A, "name": "贵阳某企业"},
                 {"op": "cny.deposit", "account": GZ_A, "amount": "100000"})
        world.ok("sc-exchange", {"op": "transfer", "asset": PDR_SC, "from": SC_B, "to": GZ_A, "quantity": "100"})
        yield world


# -- the role × province matrix -------------------------------------------------------------------------

SUBJECTS = ("admin", "auditor", "sc-sthj", "cq-sthj", "sc-exchange", "cq-exchange", "sc-finance", "cq-finance",
            "sc-monitor", "cq-monitor")

# The spec's table (§4): the roles that may use each op. principal.rotate_key here rotates
# *another* principal's key (rotating one's own is tested separately: everyone may).
SPEC_ROLES = {
    "principal.add": {"admin"},
    "principal.rotate_key": {"admin"},
    "account.open": {"operator", "admin"},
    "account.freeze": {"operator", "admin"},
    "account.unfreeze": {"operator", "admin"},
    "asset.define": {"issuer"},
    "issue": {"issuer"},
    "transfer": {"operator"},
    "trade": {"operator"},
    "trade.confirm": {"operator"},
    "trade.cancel": {"operator"},
    "pledge": {"operator"},
    "pledge.release": {"operator"},
    "surrender": {"operator", "issuer"},
    "retire": {"operator"},
    "cny.deposit": {"operator"},
    "cny.withdraw": {"operator"},
    "reverse": {"admin"},
}
NOT_ABOUT_ACCOUNTS = {"principal.add", "principal.rotate_key", "asset.define", "reverse"}
"""Ops that act on no account: a principal's own province is not checked against one."""

_counter = itertools.count(1)


def expected_outcome(world: World, subject: str, op: str) -> str:
    """``"ok"`` or the refusal code the spec calls for when ``subject`` uses ``op`` on SC's accounts."""
    principal = world[subject]
    if principal.role not in SPEC_ROLES[op]:
        return "FORBIDDEN_ROLE"
    if op not in NOT_ABOUT_ACCOUNTS and principal.province not in (None, "SC"):
        return "FORBIDDEN_PROVINCE"
    return "ok"


def _pending_trade_waiting_for_sc(world: World) -> str:
    """A trade recorded by Guizhou's exchange (GZ seller, SC buyer): it waits for Sichuan's."""
    answer = world.ok("gz-exchange", {"op": "trade", "asset": PDR_SC, "quantity": "0.001", "price": "1",
                                      "seller": GZ_A, "buyer": SC_A})
    assert answer["results"][0]["status"] == "pending"
    return answer["results"][0]["trade"]


def _freeze(world: World) -> str:
    return world.ok("sc-exchange", {"op": "account.freeze", "account": SC_A, "asset": PDR_SC, "quantity": "0.001",
                                    "reason": "matrix"})["results"][0]["freeze"]


def _pledge(world: World) -> str:
    return world.ok("sc-exchange", {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "0.001",
                                    "pledgee": "bank"})["results"][0]["pledge"]


ISSUED_BY = {"sc-sthj": PDR_SC, "cq-sthj": PDR_CQ}


def _define(world: World, subject: str) -> dict:
    n = next(_counter)
    start = date(2025, 1, 1) + timedelta(days=n)
    return {"op": "asset.define", "instrument": "PDR", "attributes": {
        "pollutant": "VOCS", "valid_from": start.isoformat(), "valid_until": (start + timedelta(days=365)).isoformat()}}


def _principal_add(world: World, subject: str) -> dict:
    name = f"matrix-{next(_counter)}"
    return {"op": "principal.add", "name": name, "role": "auditor", "key": str(SigningKey.generate(name).verifier)}


def _reverse(world: World, subject: str) -> dict:
    seq = world.ok("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "0.01"})["seq"]
    return {"op": "reverse", "seq": seq, "reason": "matrix"}


BUILDERS: dict[str, Callable[[World, str], dict]] = {
    "principal.add": _principal_add,
    "principal.rotate_key": lambda w, s: {"op": "principal.rotate_key", "name": "sc-victim",
                                          "key": str(SigningKey.generate("sc-victim").verifier)},
    "account.open": lambda w, s: {"op": "account.open", "account": enterprise("SC", 20000 + next(_counter)),
                                  "name": "matrix"},
    "account.freeze": lambda w, s: {"op": "account.freeze", "account": SC_A, "asset": PDR_SC, "quantity": "0.001",
                                    "reason": "matrix"},
    "account.unfreeze": lambda w, s: {"op": "account.unfreeze", "freeze": _freeze(w)},
    "asset.define": _define,
    "issue": lambda w, s: {"op": "issue", "asset": ISSUED_BY.get(s, PDR_SC), "to": SC_A, "quantity": "0.001"},
    "transfer": lambda w, s: {"op": "transfer", "asset": PDR_SC, "from": SC_A, "to": SC_B, "quantity": "0.001"},
    "trade": lambda w, s: {"op": "trade", "asset": PDR_SC, "quantity": "0.001", "price": "1", "seller": SC_A,
                           "buyer": SC_B},
    "trade.confirm": lambda w, s: {"op": "trade.confirm", "trade": _pending_trade_waiting_for_sc(w)},
    "trade.cancel": lambda w, s: {"op": "trade.cancel", "trade": _pending_trade_waiting_for_sc(w)},
    "pledge": lambda w, s: {"op": "pledge", "account": SC_A, "asset": PDR_SC, "quantity": "0.001", "pledgee": "bank"},
    "pledge.release": lambda w, s: {"op": "pledge.release", "pledge": _pledge(w)},
    "surrender": lambda w, s: {"op": "surrender", "account": SC_A, "asset": EUR_SC, "quantity": "0.001",
                               "compliance_year": 2025},
    "retire": lambda w, s: {"op": "retire", "account": SC_A, "asset": CHTF, "quantity": "1", "purpose": "matrix",
                            "beneficiary": "matrix"},
    "cny.deposit": lambda w, s: {"op": "cny.deposit", "account": SC_A, "amount": "0.01"},
    "cny.withdraw": lambda w, s: {"op": "cny.withdraw", "account": SC_A, "amount": "0.01"},
    "reverse": _reverse,
}
assert set(BUILDERS) == set(SPEC_ROLES)


@pytest.mark.parametrize("op_name", sorted(SPEC_ROLES))
@pytest.mark.parametrize("subject", SUBJECTS)
def test_role_and_province_matrix(world, subject, op_name):
    op = BUILDERS[op_name](world, subject)
    expected = expected_outcome(world, subject, op_name)
    before = world.log_size()
    response = world.submit(subject, op)
    if expected == "ok":
        assert response.status_code == 201, f"{subject} {op_name}: expected to be allowed: {response.text[:1000]}"
        assert world.log_size() == before + 1
    else:
        check_problem(response, 403, expected, op=0)
        assert world.log_size() == before, f"{subject} {op_name}: a refused command appended an entry"


@pytest.mark.parametrize("subject", (*SUBJECTS, "sc-slt", "cd-sthj", "cq-thc"))
def test_every_principal_may_rotate_its_own_key(world, subject):
    world.rotate_key(subject)
    world.rotate_key(subject)  # and again, with the key it rotated to


def test_a_third_province_is_kept_out_of_sichuan_and_chongqing(world):
    world.refused("gz-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "1"}, status=403,
                  code="FORBIDDEN_PROVINCE")
    world.refused("gz-exchange", {"op": "trade", "asset": PDR_CQ, "quantity": "1", "price": "1",
                                  "seller": CQ_A, "buyer": SC_A}, status=403, code="FORBIDDEN_PROVINCE")
    trade = _pending_trade_waiting_for_sc(world)
    world.refused("cq-exchange", {"op": "trade.confirm", "trade": trade}, status=403, code="FORBIDDEN_PROVINCE")
    world.refused("cq-exchange", {"op": "trade.cancel", "trade": trade}, status=403, code="FORBIDDEN_PROVINCE")
    world.refused("gz-exchange", {"op": "trade.confirm", "trade": trade}, status=403, code="FORBIDDEN_PROVINCE")
    world.ok("gz-exchange", {"op": "trade.cancel", "trade": trade})


@pytest.mark.parametrize("issuer", ["sc-slt", "cd-sthj"])
def test_an_issuer_surrenders_only_its_own_instruments(world, issuer):
    """§1: an issuer acts "for its own province and instruments". 水利厅 (WR) or 成都市生态环境局
    (CHTF) surrendering an enterprise's 用能权 (EUR, issued by 生态环境厅) is not theirs to do."""
    world.refused(issuer, {"op": "surrender", "account": SC_A, "asset": EUR_SC, "quantity": "0.001",
                           "compliance_year": 2025}, status=403, code="FORBIDDEN_INSTRUMENT")


@pytest.mark.parametrize("source, op", [
    ("SC:ISS:sc-sthj", {"op": "transfer", "asset": PDR_SC, "to": SC_B, "quantity": "500"}),
    ("SC:EXC:sc-exchange", {"op": "transfer", "asset": PDR_SC, "to": SC_B, "quantity": "500"}),
    ("SC:FIN:treasury", {"op": "transfer", "asset": EUR_SC, "to": SC_B, "quantity": "500"}),
    ("SC:ISS:sc-sthj", {"op": "surrender", "asset": EUR_SC, "quantity": "5", "compliance_year": 2025}),
], ids=["transfer-from-ISS", "transfer-from-EXC", "transfer-from-FIN", "surrender-from-ISS"])
def test_an_operator_cannot_create_units_from_accounts_that_may_go_negative(world, source, op):
    """Only issuance creates units (§4: issue, by an issuer, ISS → holder)."""
    op = {**op, ("from" if op["op"] == "transfer" else "account"): source}
    before = world.log_size()
    response = world.submit("sc-exchange", op)
    assert 400 <= response.status_code < 500, f"{op['op']} out of {source}: {response.status_code} {response.text[:300]}"
    assert world.log_size() == before


NUL_OPS = {
    "account id": {"op": "cny.deposit", "account": "SC:ENT:\x00", "amount": "1"},
    "asset id": {"op": "transfer", "asset": "PDR\x00", "from": SC_A, "to": SC_B, "quantity": "1"},
    "freeze id": {"op": "account.unfreeze", "freeze": "F-1-0\x00"},
    "trade id": {"op": "trade.confirm", "trade": "T-1-0\x00"},
    "account name": {"op": "account.open", "account": enterprise("SC", 30001), "name": "成都\x00公司"},
}


@pytest.mark.parametrize("where", list(NUL_OPS))
def test_a_nul_character_is_refused_not_a_server_error(request, world, where):
    """PostgreSQL text cannot hold U+0000; JSON strings can. A NUL must be refused (or stored) like
    any other character, never fail the request."""
    before = world.log_size()
    response = world.submit("sc-exchange", NUL_OPS[where])
    assert response.status_code < 500, response.text[:300]
    assert world.log_size() == before + (response.status_code == 201)


@pytest.mark.parametrize("ops", [
    [{"op": "trade", "asset": PDR_SC, "quantity": "1000", "price": "100000000000000", "seller": SC_A, "buyer": SC_B}],
    [{"op": "trade", "asset": PDR_SC, "quantity": "1000", "price": "100000000000000", "seller": SC_A,
      "buyer": CQ_A}],
    [{"op": "cny.deposit", "account": SC_B, "amount": "46116860184273879.03"}] * 3,
], ids=["trade-amount", "cross-province-trade-amount", "balance-after-deposits"])
def test_amounts_beyond_64_bits_are_refused_not_a_server_error(world, ops):
    before = world.log_size()
    response = world.submit("sc-exchange", *ops)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert world.log_size() == before


# -- malformed input ----------------------------------------------------------------------------------------


def deposit(amount: str = "0.01", **extra) -> dict:
    return {"op": "cny.deposit", "account": SC_A, "amount": amount, **extra}


@dataclass
class Case:
    """A request to ``POST /v1/commands`` built from a world, and the problem it must get."""

    status: int
    code: str
    build: Callable[[World], dict]
    """world → keyword arguments for :meth:`World.post` (path excluded)."""
    op: int | None = None
    bug: str | None = None
    """Set while the server gets it wrong: the case is an xfail (strict) naming the bug."""


def signed(*ops, actor="sc-exchange", command_extra=None, envelope_extra=None, key=None):
    """A request whose command is signed as it is sent (so the shape, not the signature, is at fault)."""
    def build(world: World) -> dict:
        command = {**world.command(actor, *ops), **(command_extra or {})}
        try:
            signature = world.sign(command, key=key or world[actor].key)
        except ValueError:  # RFC 8785 cannot encode it (a lone surrogate): the shape is refused first
            signature = "A" * 86 + "=="
        envelope = {"command": command, "signature": signature, **(envelope_extra or {})}
        return {"body": envelope, "token": world[actor].token}
    return build


def raw(data: bytes | Callable[[World], bytes], *, headers=None, actor="sc-exchange"):
    def build(world: World) -> dict:
        body = data(world) if callable(data) else data
        return {"data": body, "token": world[actor].token, "headers": headers}
    return build


def envelope_with(mutate: Callable[[World, dict], object], *, token_of="sc-exchange"):
    """A valid signed envelope, then ``mutate(world, envelope)`` → the body sent."""
    def build(world: World) -> dict:
        envelope = world.envelope("sc-exchange", deposit())
        body = mutate(world, envelope)
        token = None if token_of is None else (world[token_of].token if token_of in world.principals else token_of)
        return {"body": envelope if body is None else body, "token": token}
    return build


def _set(path: tuple, value):
    def mutate(world, envelope):
        target = envelope
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


def _nested(depth: int) -> bytes:
    return b'{"command": ' + b"[" * depth + b"]" * depth + b', "signature": "x"}'


def _raw_command(world: World, op_text: str) -> bytes:
    """A command whose op is JSON text written by hand (NaN, Infinity, big numbers)."""
    command = world.command("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "0.01"})
    text = json.dumps(command)
    text = text.replace('"amount": "0.01"', op_text)
    return ('{"command": ' + text + ', "signature": "' + "A" * 86 + '=="}').encode()


CASES: dict[str, Case] = {
    # The body is not a JSON object.
    "bad JSON": Case(400, "INVALID_JSON", raw(b'{"command": {"id": ')),
    "not UTF-8": Case(400, "INVALID_JSON", raw(b'{"command": "\xff\xfe"}')),
    "empty body": Case(400, "INVALID_JSON", raw(b"")),
    "not sent as JSON": Case(400, "INVALID_JSON",
                             raw(lambda w: json.dumps(w.envelope("sc-exchange", deposit())).encode(),
                                 headers={"Content-Type": "text/plain"})),
    "JSON array body": Case(422, "INVALID_BODY", raw(b"[]")),
    "JSON array of an envelope": Case(422, "INVALID_BODY",
                                      raw(lambda w: json.dumps([w.envelope("sc-exchange", deposit())]).encode())),
    "JSON string body": Case(422, "INVALID_BODY", raw(b'"command"')),
    "deeply nested JSON": Case(400, "INVALID_JSON", raw(lambda w: _nested(100_000))),
    "JSON nested 5000 deep": Case(400, "INVALID_JSON", raw(lambda w: _nested(5_000))),
    "JSON nested 100 deep in an op": Case(422, "INVALID_OP", signed(deposit(deep=json.loads("[" * 100 + "]" * 100))),
                                          op=0),
    # The envelope.
    "unknown envelope field": Case(422, "INVALID_BODY", envelope_with(_set(("note",), "x"))),
    "unknown envelope field with a lone surrogate": Case(422, "INVALID_BODY", envelope_with(_set(("\ud800",), 1))),
    "command is a list": Case(422, "INVALID_BODY", envelope_with(_set(("command",), []))),
    "command is a string": Case(422, "INVALID_BODY", envelope_with(_set(("command",), "{}"))),
    "missing signature": Case(422, "INVALID_BODY", envelope_with(lambda w, e: {"command": e["command"]})),
    "missing command": Case(422, "INVALID_BODY", envelope_with(lambda w, e: {"signature": e["signature"]})),
    "signature is a number": Case(422, "INVALID_BODY", envelope_with(_set(("signature",), 12345))),
    "signature is a float": Case(422, "INVALID_BODY", envelope_with(_set(("signature",), 1.5))),
    # Signatures.
    "signature not base64": Case(401, "BAD_SIGNATURE", envelope_with(_set(("signature",), "!!not base64!!"))),
    "signature unpadded": Case(401, "BAD_SIGNATURE",
                               envelope_with(lambda w, e: {**e, "signature": e["signature"].rstrip("=")})),
    "signature empty": Case(401, "BAD_SIGNATURE", envelope_with(_set(("signature",), ""))),
    "signature of another command": Case(401, "BAD_SIGNATURE",
                                         envelope_with(lambda w, e: {**e, "signature": w.envelope(
                                             "sc-exchange", deposit("0.02"))["signature"]})),
    "command changed after signing": Case(401, "BAD_SIGNATURE", envelope_with(_set(("command", "ops", 0, "amount"),
                                                                                  "1000"))),
    "signature by another principal's key": Case(401, "BAD_SIGNATURE", envelope_with(
        lambda w, e: {**e, "signature": w.sign(e["command"], key=w["cq-exchange"].key)})),
    "signature by an unregistered key of the same name": Case(401, "BAD_SIGNATURE", envelope_with(
        lambda w, e: {**e, "signature": w.sign(e["command"], key=SigningKey.generate("sc-exchange"))})),
    # Tokens.
    "no bearer token": Case(401, "UNAUTHENTICATED", envelope_with(lambda w, e: e, token_of=None)),
    "invalid bearer token": Case(401, "UNAUTHENTICATED", envelope_with(lambda w, e: e, token_of="ecl_not-a-token")),
    "basic auth": Case(401, "UNAUTHENTICATED",
                       lambda w: {"body": w.envelope("sc-exchange", deposit()),
                                  "headers": {"Authorization": "Basic c2MtZXhjaGFuZ2U6eA=="}}),
    "token of another principal than the actor": Case(403, "ACTOR_MISMATCH",
                                                      envelope_with(lambda w, e: e, token_of="cq-exchange")),
    "an actor who is no principal": Case(403, "ACTOR_MISMATCH", signed(deposit(), actor="sc-exchange",
                                                                        command_extra={"actor": "nobody"})),
    # The command.
    "unknown command field": Case(422, "INVALID_COMMAND", signed(deposit(), command_extra={"nonce": "1"})),
    "command id empty": Case(422, "INVALID_COMMAND", signed(deposit(), command_extra={"id": ""})),
    "command id with a space": Case(422, "INVALID_COMMAND", signed(deposit(), command_extra={"id": "a b"})),
    "command id too long": Case(422, "INVALID_COMMAND", signed(deposit(), command_extra={"id": "a" * 129})),
    "command id a number": Case(422, "INVALID_COMMAND", signed(deposit(), command_extra={"id": 7})),
    "ops not a list": Case(422, "INVALID_COMMAND", signed(command_extra={"ops": deposit()})),
    "ops empty": Case(422, "INVALID_COMMAND", signed(command_extra={"ops": []})),
    "too many ops": Case(422, "INVALID_COMMAND", signed(*[deposit()] * 101)),
    "op not an object": Case(422, "INVALID_COMMAND", signed("cny.deposit"), op=0),
    "op without a name": Case(422, "INVALID_COMMAND", signed({"account": SC_A, "amount": "1"}), op=0),
    "unknown op": Case(422, "UNKNOWN_OP", signed({"op": "cny.print"}), op=0),
    "unknown op field": Case(422, "INVALID_OP", signed(deposit(memo="x")), op=0),
    "missing op field": Case(422, "INVALID_OP", signed({"op": "cny.deposit", "account": SC_A}), op=0),
    # Quantities.
    "quantity as a number": Case(422, "INVALID_OP", signed(deposit(1)), op=0),
    "quantity as a boolean": Case(422, "INVALID_OP", signed(deposit(True)), op=0),
    "quantity null": Case(422, "INVALID_OP", signed(deposit(None)), op=0),
    "quantity as a float": Case(422, "INVALID_COMMAND", signed(deposit(0.01))),
    "too many decimals": Case(422, "INVALID_QUANTITY", signed(deposit("0.001")), op=0),
    "too many decimals (zeros)": Case(422, "INVALID_QUANTITY", signed(deposit("1.000")), op=0),
    "negative quantity": Case(422, "INVALID_QUANTITY", signed(deposit("-1")), op=0),
    "zero quantity": Case(422, "INVALID_QUANTITY", signed(deposit("0")), op=0),
    "zero quantity with decimals": Case(422, "INVALID_QUANTITY", signed(deposit("0.00")), op=0),
    "exponent": Case(422, "INVALID_QUANTITY", signed(deposit("1e3")), op=0),
    "leading plus": Case(422, "INVALID_QUANTITY", signed(deposit("+1")), op=0),
    "leading zero": Case(422, "INVALID_QUANTITY", signed(deposit("01")), op=0),
    "trailing point": Case(422, "INVALID_QUANTITY", signed(deposit("1.")), op=0),
    "leading point": Case(422, "INVALID_QUANTITY", signed(deposit(".5")), op=0),
    "spaces": Case(422, "INVALID_QUANTITY", signed(deposit(" 1")), op=0),
    "fullwidth digits": Case(422, "INVALID_QUANTITY", signed(deposit("１")), op=0),
    "thousands separator": Case(422, "INVALID_QUANTITY", signed(deposit("1,000")), op=0),
    "NaN as a string": Case(422, "INVALID_QUANTITY", signed(deposit("NaN")), op=0),
    "Infinity as a string": Case(422, "INVALID_QUANTITY", signed(deposit("Infinity")), op=0),
    "quantity beyond 2^62 units": Case(422, "INVALID_QUANTITY", signed(deposit("46116860184273879.04")), op=0),
    # Numbers that are not integers JSON can carry exactly.
    "float in an op": Case(422, "INVALID_COMMAND", signed(
        {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1", "seller": SC_A, "buyer": SC_B,
         "hold_hours": 1.0})),
    "float deep in an op": Case(422, "INVALID_COMMAND", signed(
        {"op": "asset.define", "instrument": "EUR", "attributes": {"compliance_year": 2030.0}}, actor="sc-sthj")),
    "integer above 2^53": Case(422, "INVALID_COMMAND", signed(
        {"op": "reverse", "seq": 2**53 + 1, "reason": "x"}, actor="admin")),
    "huge integer": Case(422, "INVALID_COMMAND", signed(
        {"op": "trade", "asset": PDR_SC, "quantity": "1", "price": "1", "seller": SC_A, "buyer": SC_B,
         "hold_hours": 10**40})),
    "NaN in an op": Case(422, "INVALID_COMMAND", raw(lambda w: _raw_command(w, '"amount": NaN'))),
    "Infinity in an op": Case(422, "INVALID_COMMAND", raw(lambda w: _raw_command(w, '"amount": -Infinity'))),
    "1e400 in an op": Case(422, "INVALID_COMMAND", raw(lambda w: _raw_command(w, '"amount": 1e400'))),
    "NaN in the envelope": Case(422, "INVALID_BODY", envelope_with(_set(("signature",), float("nan")))),
    "lone surrogate in an op": Case(422, "INVALID_COMMAND", signed(deposit(**{"\udc00": "x"}))),
    # References the ledger does not know.
    "unknown account": Case(422, "UNKNOWN_ACCOUNT", signed(
        {"op": "cny.deposit", "account": enterprise("SC", 99999), "amount": "1"}), op=0),
    "malformed account": Case(422, "UNKNOWN_ACCOUNT", signed({"op": "cny.deposit", "account": "SC::", "amount": "1"}),
                              op=0),
    "unknown asset": Case(422, "UNKNOWN_ASSET", signed(
        {"op": "transfer", "asset": "PDR-SC-COD-20990101-20991231", "from": SC_A, "to": SC_B, "quantity": "1"}), op=0),
    "account as a number": Case(422, "INVALID_OP", signed({"op": "cny.deposit", "account": 5, "amount": "1"}), op=0),
}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xfail(reason=case.bug, strict=True))
                                  if case.bug else name for name, case in CASES.items()])
def test_malformed_input_is_refused_and_appends_nothing(world, name):
    case = CASES[name]
    request = case.build(world)
    before = world.log_size()
    response = world.post("/v1/commands", request.get("body"), token=request.get("token"),
                          data=request.get("data"), headers=request.get("headers"))
    check_problem(response, case.status, case.code, op=case.op)
    assert world.log_size() == before, f"{name}: appended an entry"


def test_malformed_batches(world):
    before = world.log_size()
    token = world["sc-exchange"].token
    for body, status, code in (({"commands": []}, 422, "INVALID_BODY"),
                               ({"commands": "x"}, 422, "INVALID_BODY"),
                               ({"commands": [], "extra": 1}, 422, "INVALID_BODY"),
                               ([], 422, "INVALID_BODY")):
        check_problem(world.post("/v1/commands/batch", body, token=token), status, code)
    check_problem(world.post("/v1/commands/batch", {"commands": [world.envelope("sc-exchange", deposit())]}),
                  401, "UNAUTHENTICATED")
    # An item that is not an object refuses the whole batch.
    good = world.envelope("sc-exchange", deposit())
    check_problem(world.batch("sc-exchange", [good, "not an envelope"]), 422, "INVALID_BODY")
    assert world.log_size() == before
    # Otherwise each command of a batch succeeds or fails on its own.
    envelopes = [good, {"command": good["command"]}, world.envelope("sc-exchange", deposit("-1")),
                 world.envelope("cq-exchange", deposit()), {**world.envelope("sc-exchange", deposit()), "x": 1},
                 world.envelope("sc-exchange", deposit("0.02"))]
    response = world.batch("sc-exchange", envelopes)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["status"], r["body"].get("code")) for r in results] == [
        (201, None), (422, "INVALID_BODY"), (422, "INVALID_QUANTITY"), (403, "ACTOR_MISMATCH"), (422, "INVALID_BODY"),
        (201, None)]
    assert results[2]["body"]["op"] == 0
    assert world.log_size() == before + 2
    assert results[5]["body"]["seq"] == results[0]["body"]["seq"] + 1


# -- mutations of valid envelopes ------------------------------------------------------------------------------

# U+0000 is left out on purpose: test_a_nul_character_is_refused_not_a_server_error covers it (a
# known PostgreSQL 500); put it back once that passes. Lone surrogates (a known 500 too, see CASES)
# are not generated by st.text().
TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=12)
json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | TEXT
                | st.sampled_from(["", "0", "0.01", "1e3", "-1", "1.001", SC_A, CQ_A, PDR_SC, CNY, "sc-exchange"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)
LEVELS = ("envelope", "command", "op")
FIELD_NAMES = st.sampled_from(["command", "signature", "id", "actor", "ops", "op", "account", "amount", "asset",
                               "quantity", "from", "to", "extra"]) | TEXT.filter(bool)


@st.composite
def mutations(draw):
    """A list of (kind, level, field, value) edits of a valid envelope, and whether to re-sign."""
    edits = draw(st.lists(st.tuples(st.sampled_from(["set", "delete", "op_name", "quantity"]),
                                    st.sampled_from(LEVELS), FIELD_NAMES, json_values), min_size=1, max_size=3))
    resign = draw(st.booleans())
    token = draw(st.sampled_from(["actor", "actor", "actor", "other", "none"]))
    op_name = draw(st.sampled_from(sorted(SPEC_ROLES) + ["cny.print", ""]))
    quantity = draw(st.from_regex(r"-?[0-9]{0,20}(\.[0-9]{0,4})?([eE][0-9]{1,3})?", fullmatch=True)
                    | TEXT)
    return edits, resign, token, op_name, quantity


def _apply(world: World, edits, resign, token, op_name, quantity):
    envelope = world.envelope("sc-exchange", {"op": "cny.deposit", "account": SC_A, "amount": "0.01"})
    for kind, level, name, value in edits:
        target = {"envelope": envelope, "command": envelope.get("command"),
                  "op": _first_op(envelope)}[level]
        if not isinstance(target, dict):
            continue
        if kind == "set":
            target[name] = value
        elif kind == "delete":
            target.pop(name, None)
        elif kind == "op_name" and level == "op":
            target["op"] = op_name
        elif kind == "quantity" and level == "op":
            target["amount"] = quantity
    command = envelope.get("command")
    if resign and isinstance(command, dict) and command.get("actor") == "sc-exchange":
        try:
            envelope["signature"] = world.sign(command)
        except (ValueError, TypeError):
            pass  # not canonicalisable: sent with the old signature
    tokens = {"actor": world["sc-exchange"].token, "other": world["cq-exchange"].token, "none": None}
    return envelope, tokens[token]


def _first_op(envelope):
    command = envelope.get("command")
    ops = command.get("ops") if isinstance(command, dict) else None
    return ops[0] if isinstance(ops, list) and ops and isinstance(ops[0], dict) else None


ANSWERS = {200, 201, 400, 401, 403, 409, 422}


@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=mutations())
def test_mutated_envelopes_never_fail_the_server_nor_grow_the_log_when_refused(world, mutation):
    envelope, token = _apply(world, *mutation)
    before = world.log_size()
    response = world.post("/v1/commands", envelope, token=token)
    after = world.log_size()
    assert response.status_code in ANSWERS, f"HTTP {response.status_code}: {response.text[:1000]}\n{envelope!r}"
    if response.status_code == 201:
        assert after == before + 1
    elif response.status_code == 200:
        assert after == before
    else:
        assert after == before, f"HTTP {response.status_code} appended an entry: {envelope!r}"
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert isinstance(response.json().get("code"), str)
