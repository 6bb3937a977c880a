"""Trades from several OS processes at once, on the same accounts, through HTTP.

Four processes (multiprocessing, 'spawn') each send 30 commands to the real server (gunicorn, 2
workers): same-province trades among Sichuan's enterprises, cross-province trades recorded by one
exchange and confirmed (or cancelled) by the other, some of them in batches; quantities are large
enough that sellers and buyers run out, so refusals for balance race with acceptances.

Afterwards the ledger must be whole: every asset's balances sum to zero, no enterprise is below
zero (counting held units), holds and trades agree, every accepted command is in the log exactly
once at consecutive seqs and nothing refused is, and the checkpoint verifies (signature, root
recomputed from the leaves, consistency with the checkpoint taken before).
"""

import base64
import hashlib
import multiprocessing
import random
from collections import Counter, defaultdict

import pytest

from ledger.projections import Account, Balance, Hold, Obligation, Posting, Trade
from ledger.verify import leaf_hash, open_checkpoint, verify_consistency, verify_entry_signature
from support.world import (CHTF, CQ_A, CQ_B, CQ_EXC, ENGINES, PDR_CQ, PDR_SC, SC_A, SC_B, SC_C, SC_D, SC_EXC,
                           WR_SC, running_world)

pytestmark = pytest.mark.slow

PROCESSES = 4
COMMANDS = 30
SC_SELLABLE = (PDR_SC, WR_SC, CHTF)


@pytest.fixture(scope="module", params=ENGINES)
def world(request, tmp_path_factory):
    with running_world(request.param, tmp_path_factory.mktemp("concurrency")) as world:
        yield world


# -- the worker (runs in a child process: everything it needs comes in its argument) ----------------------


def trade_worker(job: dict) -> list[dict]:
    """Send ``job["commands"]`` commands; return one record per command sent."""
    import requests

    from ledger.encoding import b64encode, canonical
    from ledger.keys import SigningKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    rng = random.Random(job["seed"])
    session = requests.Session()
    keys = {name: SigningKey(name=name, private_key=load_pem_private_key(pem, password=None))
            for name, (_token, pem) in job["principals"].items()}
    tokens = {name: token for name, (token, _pem) in job["principals"].items()}
    counter = iter(range(10**6))
    records: list[dict] = []
    pending: list[tuple[str, str]] = []  # (trade id, the exchange that must confirm it)

    def envelope(actor, *ops):
        command = {"id": f"w{job['index']}-{next(counter)}", "actor": actor, "ops": list(ops)}
        return {"command": command, "signature": b64encode(keys[actor].sign(canonical(command)))}

    def post(path, actor, body):
        for _attempt in range(5):  # 503 means busy: the same command again is safe
            response = session.post(job["url"] + path, json=body, timeout=120,
                                    headers={"Authorization": f"Bearer {tokens[actor]}"})
            if response.status_code != 503:
                return response
        return response

    def record(actor, env, status, body):
        records.append({"actor": actor, "id": env["command"]["id"], "status": status,
                        "code": body.get("code"), "seq": body.get("seq"),
                        "leaf_hash": body.get("leaf_hash"), "results": body.get("results"),
                        "ops": [op["op"] for op in env["command"]["ops"]]})
        if status == 201:
            for op, result in zip(env["command"]["ops"], body["results"]):
                if op["op"] == "trade" and result["status"] == "pending":
                    pending.append((result["trade"], "cq-exchange" if actor == "sc-exchange" else "sc-exchange"))

    def submit(actor, *ops):
        env = envelope(actor, *ops)
        response = post("/v1/commands", actor, env)
        record(actor, env, response.status_code, response.json())

    def same_province_trade():
        seller, buyer = rng.sample(job["sc_enterprises"], 2)
        asset = rng.choice(SC_SELLABLE)
        quantity = str(rng.randint(1, 300)) if asset != PDR_SC else f"{rng.randint(1, 300)}.{rng.randint(0, 999):03d}"
        price = f"{rng.randint(1, 120)}.{rng.randint(0, 9999):04d}"
        return {"op": "trade", "asset": asset, "quantity": quantity, "price": price, "seller": seller, "buyer": buyer}

    def cross_trade():
        if rng.random() < 0.5:
            return "sc-exchange", {"op": "trade", "asset": PDR_SC, "quantity": f"{rng.randint(1, 200)}.5",
                                   "price": f"{rng.randint(1, 99)}.25", "seller": rng.choice(job["sc_enterprises"]),
                                   "buyer": rng.choice(job["cq_enterprises"])}
        return "cq-exchange", {"op": "trade", "asset": PDR_CQ, "quantity": str(rng.randint(1, 200)),
                               "price": f"{rng.randint(1, 99)}.125", "seller": rng.choice(job["cq_enterprises"]),
                               "buyer": rng.choice(job["sc_enterprises"])}

    sent = 0
    while sent < job["commands"]:
        roll = rng.random()
        if pending and roll < 0.3:
            trade_id, confirmer = pending.pop(rng.randrange(len(pending)))
            op = "trade.cancel" if rng.random() < 0.2 else "trade.confirm"
            submit(confirmer, {"op": op, "trade": trade_id})
            sent += 1
        elif roll < 0.5:
            submit(*cross_trade())
            sent += 1
        elif roll < 0.65 and job["commands"] - sent >= 2:
            # Two commands in one batch (one transaction), each accepted or refused on its own.
            envs = [envelope("sc-exchange", same_province_trade()) for _ in range(2)]
            response = post("/v1/commands/batch", "sc-exchange", {"commands": envs})
            assert response.status_code == 200, response.text
            for env, item in zip(envs, response.json()["results"]):
                record("sc-exchange", env, item["status"], item["body"])
            sent += 2
        elif roll < 0.75:
            # Two trades in one command: both or neither.
            submit("sc-exchange", same_province_trade(), same_province_trade())
            sent += 1
        else:
            submit("sc-exchange", same_province_trade())
            sent += 1
    return records


# -- the test --------------------------------------------------------------------------------------


def tree_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 MTH over leaf hashes, computed here from scratch."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + tree_root(leaves[:k]) + tree_root(leaves[k:])).digest()


def test_concurrent_trades_keep_the_ledger_whole(world):
    sc_enterprises, cq_enterprises = [SC_A, SC_B, SC_C, SC_D], [CQ_A, CQ_B]
    # Thin the buyers' cash, so that refusals for balance race with acceptances.
    world.ok("sc-exchange", *({"op": "cny.withdraw", "account": a, "amount": "90000"} for a in sc_enterprises))
    world.ok("cq-exchange", *({"op": "cny.withdraw", "account": a, "amount": "90000"} for a in cq_enterprises))

    log_key = world.log_key()
    before_note = world.checkpoint()
    before = open_checkpoint(before_note, [log_key])
    start = world.log_size()
    assert before.size == start

    principals = {name: (world[name].token, world[name].private_pem())
                  for name in ("sc-exchange", "cq-exchange")}
    jobs = [{"index": i, "seed": 1000 + i, "url": world.url, "commands": COMMANDS, "principals": principals,
             "sc_enterprises": sc_enterprises, "cq_enterprises": cq_enterprises} for i in range(PROCESSES)]
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as pool:
        records = [r for worker in pool.map(trade_worker, jobs) for r in worker]

    statuses = Counter(r["status"] for r in records)
    codes = Counter(r["code"] for r in records if r["code"])
    print(f"statuses {dict(statuses)}, refusals {dict(codes)}")
    assert len(records) == PROCESSES * COMMANDS
    assert set(statuses) <= {201, 409}, f"unexpected answers: {statuses} {codes}"
    assert set(codes) <= {"INSUFFICIENT_BALANCE"}, codes
    accepted = [r for r in records if r["status"] == 201]
    assert len(accepted) >= PROCESSES * COMMANDS // 4, f"too few commands accepted to mean anything: {statuses}"
    assert codes["INSUFFICIENT_BALANCE"] > 0, "no refusal raced an acceptance: the test lost its teeth"

    # -- the log: every accepted command once, at consecutive seqs; nothing refused ----------------
    entries = world.entries()
    size = world.log_size()
    assert [item["seq"] for item in entries] == list(range(size))
    new = entries[start:]
    logged = Counter((i["entry"]["command"]["actor"], i["entry"]["command"]["id"]) for i in new)
    assert all(count == 1 for count in logged.values()), [k for k, c in logged.items() if c > 1]
    assert set(logged) == {(r["actor"], r["id"]) for r in accepted}
    assert sorted(r["seq"] for r in accepted) == list(range(start, size))
    by_seq = {item["seq"]: item for item in new}
    for r in accepted:
        item = by_seq[r["seq"]]
        assert (item["entry"]["command"]["actor"], item["entry"]["command"]["id"]) == (r["actor"], r["id"])
        assert item["leaf_hash"] == r["leaf_hash"]
    for item in entries:
        assert leaf_hash(item["entry"]) == base64.b64decode(item["leaf_hash"])
        if item["entry"]["command"]["actor"] != "ledger":
            verify_entry_signature(item["entry"])

    # -- the checkpoint ------------------------------------------------------------------------------
    after = open_checkpoint(world.checkpoint(), [log_key])
    assert after.size == size
    assert tree_root([base64.b64decode(item["leaf_hash"]) for item in entries]) == after.root
    proof = world.server.get("/v1/log/proofs/consistency", params={"first": before.size, "second": after.size}).json()
    verify_consistency(before.size, after.size, [base64.b64decode(h) for h in proof["hashes"]],
                       before.root, after.root)

    # -- the projections -------------------------------------------------------------------------------
    balances = world.rows(Balance)
    kinds = {a.id: a.kind for a in world.rows(Account)}
    totals = defaultdict(int)
    for b in balances:
        totals[b.asset] += b.total
        assert min(b.frozen, b.pledged, b.held) >= 0, b
        if kinds[b.account] in ("ENT", "IND"):
            assert b.total >= 0 and b.total - b.frozen - b.pledged - b.held >= 0, f"{b.account} {b.asset}: {b}"
    assert {asset: total for asset, total in totals.items() if total} == {}, "an asset's balances do not sum to zero"

    postings = world.rows(Posting)
    by_entry = defaultdict(int)
    by_holding = defaultdict(int)
    for p in postings:
        by_entry[(p.seq, p.asset)] += p.amount
        by_holding[(p.account, p.asset)] += p.amount
    assert {k: v for k, v in by_entry.items() if v} == {}, "an entry's postings of an asset do not sum to zero"
    assert {(b.account, b.asset): b.total for b in balances if b.total} == {k: v for k, v in by_holding.items() if v}

    # Holds and trades agree: a pending trade holds the seller's units and the buyer's CNY.
    open_holds = [h for h in world.rows(Hold) if h.released_seq is None]
    held = defaultdict(int)
    for h in open_holds:
        if h.kind == "trade":
            held[(h.account, h.asset)] += h.quantity
    assert {(b.account, b.asset): b.held for b in balances if b.held} == dict(held)
    trades = {t.id: t for t in world.rows(Trade)}
    pending = {t.id for t in trades.values() if t.status == "pending"}
    assert {h.id.rsplit("/", 1)[0] for h in open_holds if h.kind == "trade"} == pending
    for t in trades.values():
        assert t.status in ("settled", "pending", "confirmed", "cancelled"), t
    obligations = world.rows(Obligation)
    confirmed = {t.id: t for t in trades.values() if t.status == "confirmed"}
    assert len(obligations) == len(confirmed)
    assert sorted(o.amount for o in obligations) == sorted(t.amount for t in confirmed.values())
    for o in obligations:
        assert {o.debtor, o.creditor} == {SC_EXC, CQ_EXC} and o.amount > 0
    # Every trade the workers saw accepted is in the projections, with the status it ended with.
    accepted_trades = [res["trade"] for r in accepted for op, res in zip(r["ops"], r["results"]) if op == "trade"]
    assert set(accepted_trades) == set(trades) - {t for t in trades if trades[t].seq < start}
