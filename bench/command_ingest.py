"""Command ingest benchmark: batches of signed commands through the contracts, against this machine's limit.

Run from the project root:

    .venv/bin/python bench/command_ingest.py [--entries N] [--batch B] [--json] [--profile PATH]

What it does, in one run:

1. **Setup** (not timed): a temporary SQLite ledger with the genesis entry; per province
   (Sichuan, Chongqing) an exchange (operator) and an environment bureau issuing PDR, registered
   with ``principal.add`` as the ledger's own commands; eight enterprises with valid
   统一社会信用代码 opened by the exchange, CNY deposited for each, a PDR asset defined and issued
   to each — every principal command signed and submitted as ``POST /v1/commands/batch`` runs it.
2. **Preparation** (not timed): N distinct commands of the two exchanges — transfers (nine in
   ten) and trades settled at once (one in ten) between enterprises of the exchange's province —
   each signed with its actor's Ed25519 key over JCS(command), on every core: signing is the
   client's cost. Each batch of B commands is one exchange's, as a batch request carries one
   principal's commands; the exchanges take turns batch by batch. The balances they must leave
   are computed here, without the contracts.
3. **Interleaved batch by batch**, each batch timed for each pipeline (wall clock and CPU):
   - *raw*: JCS + SHA-256 + bare SQLite insert (``bench/log_append.py``'s raw pipeline);
   - *raw + verify*: the same with the Ed25519 verify of each signature over JCS(command) — the
     raw pipeline limit DESIGN.md's ingest target is measured against;
   - *ledger*: what ``POST /v1/commands/batch`` runs between parsing the request and encoding
     the answer (``api/commands/views.py``): the body loaded with ``CommandBatch``, one
     ``store.writer()`` transaction, ``writer.prefetch`` of the batch's command ids, then per
     command the view's own ``_submit_one`` (envelope schema, actor check, savepoint,
     ``contracts.commands.submit``, ``settle_requested``) and its answer ``{status, body}``, a
     refusal as the view makes it.
   The ratio ledger / (raw + verify) is the target (>= 50%), by wall clock and by CPU time.
4. **Checks**: no command refused (every answer 201), the log holds setup + N entries, both raw
   tables N rows, every enterprise's, exchange's and issuer's balance is what the commands
   should leave, a sample of stored entries are the commands sent with valid signatures and
   leaf hashes, and ``store.root()`` equals the root recomputed from the stored leaves.

Progress goes to stderr; the summary (or, with --json, a JSON document) goes to stdout. The exit
status is 0 whenever the run completed, even if the target is missed; non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import multiprocessing
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT), str(BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import rfc8785  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

import log_append  # noqa: E402  (its raw pipeline, interleaving, timing and progress helpers)
from log_append import (RawPipeline, discard, emit, independent_roots, ledger_revision, log, measure_verify,  # noqa: E402
                        run_interleaved)
from verify_replay import print_profile  # noqa: E402

from api.commands.schemas import CommandBatch  # noqa: E402
from api.commands.views import _command_keys, _submit_one, refusal_problem  # noqa: E402
from api.demo import asset_id, principal_op  # noqa: E402
from api.problems import Problem, problem_body  # noqa: E402
from contracts.commands import submit_ledger  # noqa: E402
from contracts.errors import Refused  # noqa: E402
from contracts.uscc import check_character  # noqa: E402
from ledger import verify  # noqa: E402
from ledger.database import create_database_engine, upgrade  # noqa: E402
from ledger.encoding import b64encode, canonical  # noqa: E402
from ledger.entry import SignedCommand  # noqa: E402
from ledger.keys import SigningKey  # noqa: E402
from ledger.logkeys import Keyring  # noqa: E402
from ledger.projections import Balance  # noqa: E402
from ledger.store import LogStore  # noqa: E402

ORIGIN = "bench.ecoledger.local/log"
RATIO_TARGET = 0.50
MAX_BATCH = 1000
"""``POST /v1/commands/batch`` takes at most this many commands (api/commands/schemas.py)."""

# -- the world the commands act on (shared with bench/http_append.py) ----------------------------

PROVINCES = {"SC": ("510100", "成都"), "CQ": ("500000", "重庆")}
"""Province → (administrative division code in the enterprises' USCCs, city in their names)."""
ENTERPRISES = 8
DEPOSIT = "100000000.00"      # CNY deposited for each enterprise
ISSUED = "10000000.000"       # PDR tonnes issued to each enterprise
PDR_ATTRIBUTES = {"pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}
PDR_DECIMALS, CNY_DECIMALS, PRICE_DECIMALS = 3, 2, 4


def exchange_name(province: str) -> str:
    return f"{province.lower()}-exchange"


def issuer_name(province: str) -> str:
    return f"{province.lower()}-sthj"


def principals() -> list[tuple[str, str, str, list[str]]]:
    """(name, role, province, instruments) of every principal the benchmarks register."""
    out = []
    for province in PROVINCES:
        out.append((exchange_name(province), "operator", province, []))
        out.append((issuer_name(province), "issuer", province, ["PDR"]))
    return out


@functools.cache
def enterprise_accounts(province: str) -> tuple[str, ...]:
    code = PROVINCES[province][0]
    ids = (f"91{code}MA{n:07d}" for n in range(1, ENTERPRISES + 1))
    return tuple(f"{province}:ENT:{first17}{check_character(first17)}" for first17 in ids)


@functools.cache
def pdr_asset(province: str) -> str:
    return asset_id("PDR", province, PDR_ATTRIBUTES)


def setup_commands(province: str) -> list[tuple[str, list[dict]]]:
    """The commands that prepare a province, in order: (signing principal, ops)."""
    accounts, city = enterprise_accounts(province), PROVINCES[province][1]
    exchange, issuer = exchange_name(province), issuer_name(province)
    return [
        (exchange, [{"op": "account.open", "account": a, "name": f"{city}第{n}号化工有限公司"}
                    for n, a in enumerate(accounts, start=1)]),
        (exchange, [{"op": "cny.deposit", "account": a, "amount": DEPOSIT} for a in accounts]),
        (issuer, [{"op": "asset.define", "instrument": "PDR", "attributes": PDR_ATTRIBUTES}]),
        (issuer, [{"op": "issue", "asset": pdr_asset(province), "to": a, "quantity": ISSUED} for a in accounts]),
    ]


def workload_ops(i: int, province: str) -> list[dict]:
    """Command number i of a province's exchange: a transfer, or (one in ten) a trade settled at
    once, between two of the province's enterprises. Deterministic; quantities small enough that
    no enterprise runs short over millions of commands."""
    accounts = enterprise_accounts(province)
    source = accounts[i % ENTERPRISES]
    target = accounts[(5 * i + 3) % ENTERPRISES]
    if target == source:
        target = accounts[(i + 1) % ENTERPRISES]
    asset = pdr_asset(province)
    if i % 10 == 7:
        return [{"op": "trade", "asset": asset, "quantity": f"{1 + i % 5}.{(13 * i) % 1000:03d}",
                 "price": f"{18 + i % 41}.{(7 * i) % 10000:04d}", "seller": source, "buyer": target}]
    return [{"op": "transfer", "asset": asset, "from": source, "to": target,
             "quantity": f"{1 + i % 89}.{(37 * i) % 1000:03d}"}]


def _units(text: str, decimals: int) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or 0)


class Expected:
    """The balance totals the setup and the workload must leave, computed here from the ops
    alone (not with the contracts' code): (account, asset) → integer units."""

    def __init__(self) -> None:
        self.totals: Counter = Counter()

    def apply(self, ops: list[dict], province: str) -> None:
        for op in ops:
            kind = op["op"]
            if kind == "cny.deposit":
                self._move("CNY", f"{province}:EXC:{exchange_name(province)}", op["account"],
                           _units(op["amount"], CNY_DECIMALS))
            elif kind == "issue":
                self._move(op["asset"], f"{province}:ISS:{issuer_name(province)}", op["to"],
                           _units(op["quantity"], PDR_DECIMALS))
            elif kind == "transfer":
                self._move(op["asset"], op["from"], op["to"], _units(op["quantity"], PDR_DECIMALS))
            elif kind == "trade":
                units = _units(op["quantity"], PDR_DECIMALS)
                price = _units(op["price"], PRICE_DECIMALS)
                # price × quantity in fen, half up: price·10⁴ × units·10³ / 10⁵
                scale = 10 ** (PRICE_DECIMALS + PDR_DECIMALS - CNY_DECIMALS)
                fen = (2 * price * units + scale) // (2 * scale)
                self._move(op["asset"], op["seller"], op["buyer"], units)
                self._move("CNY", op["buyer"], op["seller"], fen)

    def _move(self, asset: str, source: str, target: str, units: int) -> None:
        self.totals[(source, asset)] -= units
        self.totals[(target, asset)] += units

    def check(self, store: LogStore) -> int:
        """Compare every expected total with the ``balances`` projection; returns how many."""
        with store.reader() as session:
            for (account, asset), total in sorted(self.totals.items()):
                row = session.get(Balance, (account, asset))
                found = None if row is None else (row.total, row.frozen, row.pledged, row.held)
                if found != (total, 0, 0, 0):
                    raise SystemExit(f"balance of {account} in {asset}: expected total {total} "
                                     f"and nothing held, found (total, frozen, pledged, held) = {found}")
        return len(self.totals)


def register_principals(store: LogStore, keys: dict[str, SigningKey]) -> None:
    """``principal.add`` of every principal, as the ledger's own commands (as the CLI does)."""
    with store.writer() as writer:
        for name, role, province, instruments in principals():
            submit_ledger(writer, f"principal-add:{name}",
                          [principal_op(name, role, province, keys[name], instruments=instruments)])


# -- what POST /v1/commands/batch runs ----------------------------------------------------------

def answer_one(writer, envelope: object, actor: str) -> dict:
    """One item of the batch endpoint's answer: the outcome, or the refusal as a problem."""
    try:
        outcome = _submit_one(writer, envelope, actor)
    except Refused as refusal:
        failure = refusal_problem(refusal)
    except Problem as problem:
        failure = problem
    else:
        return {"status": 200 if outcome.replayed else 201, "body": outcome.as_dict()}
    return {"status": failure.status, "body": problem_body(failure)}


def ingest_batch(store: LogStore, envelopes: list[dict], actor: str) -> list[dict]:
    """``post_batch`` in api/commands/views.py for principal ``actor``, minus HTTP and JSON."""
    batch = CommandBatch().load({"commands": envelopes})
    with store.writer() as writer:
        writer.prefetch(_command_keys(batch["commands"], actor))
        return [answer_one(writer, envelope, actor) for envelope in batch["commands"]]


def sign(key: SigningKey, command: dict) -> dict:
    return {"command": command, "signature": b64encode(key.sign(canonical(command)))}


def run_setup(store: LogStore, keys: dict[str, SigningKey]) -> int:
    """Register the principals, then prepare both provinces; returns the log's size after."""
    register_principals(store, keys)
    counter = 0
    for province in PROVINCES:
        for signer, ops in setup_commands(province):
            counter += 1
            envelope = sign(keys[signer], {"id": f"setup-{counter:03d}", "actor": signer, "ops": ops})
            answers = ingest_batch(store, [envelope], signer)
            if answers[0]["status"] != 201:
                raise SystemExit(f"setup command {counter} of {signer} refused: {answers[0]['body']}")
    return store.size()


# -- preparing the signed commands --------------------------------------------------------------

def _sign_chunk(commands: list[dict]) -> list[str]:
    """Signatures over JCS(command), with the keys ``log_append._init_worker`` gave this worker."""
    keys = log_append._WORKER_KEYS
    return [b64encode(keys[c["actor"]].sign(rfc8785.dumps(c))) for c in commands]


def workload_actor(i: int, batch: int) -> tuple[str, str]:
    """(province, actor) of command i: each batch is one exchange's, taking turns."""
    province = list(PROVINCES)[(i // batch) % len(PROVINCES)]
    return province, exchange_name(province)


def prepare(n: int, batch: int, workers: int, keys: dict[str, SigningKey], expected: Expected
            ) -> tuple[list[SignedCommand], list[dict], dict]:
    """N signed commands: as SignedCommand (for the raw pipelines) and as the envelopes
    ``{command, signature}`` a batch request carries (for the ledger)."""
    commands = []
    for i in range(n):
        province, actor = workload_actor(i, batch)
        ops = workload_ops(i, province)
        expected.apply(ops, province)
        commands.append({"id": f"{actor}-{i:09d}", "actor": actor, "ops": ops})
    raw_keys = {name: key.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                   serialization.NoEncryption())
                for name, key in keys.items()}
    chunks = [commands[s:s + 5000] for s in range(0, n, 5000)]
    started = time.perf_counter()
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                          else "spawn")
    signatures: list[str] = []
    with context.Pool(workers, initializer=log_append._init_worker, initargs=(raw_keys,)) as pool:
        for part in pool.imap(_sign_chunk, chunks):
            signatures.extend(part)
            if len(signatures) % 50_000 == 0 or len(signatures) == n:
                log(f"  signed {len(signatures):,}/{n:,}")
    seconds = time.perf_counter() - started
    verifiers = {name: str(key.verifier) for name, key in keys.items()}
    signed = [SignedCommand(command=c, signature=s, key=verifiers[c["actor"]]) for c, s in zip(commands, signatures)]
    envelopes = [{"command": c, "signature": s} for c, s in zip(commands, signatures)]
    return signed, envelopes, {"seconds": seconds, "workers": workers, "rate": n / seconds}


# -- the ledger pipeline ------------------------------------------------------------------------

class LedgerPipeline:
    """Batches as ``POST /v1/commands/batch`` ingests them; counts the answers' statuses."""

    def __init__(self, store: LogStore, envelopes: list[dict], profiler: cProfile.Profile | None):
        self.store = store
        self.envelopes = envelopes
        self.profiler = profiler
        self.statuses: Counter = Counter()
        self.refusals: list[dict] = []

    def append(self, batch: list[SignedCommand], start: int) -> None:
        envelopes = self.envelopes[start:start + len(batch)]
        if self.profiler:
            self.profiler.enable()
        answers = ingest_batch(self.store, envelopes, batch[0].actor)
        if self.profiler:
            self.profiler.disable()
        for answer in answers:
            self.statuses[answer["status"]] += 1
            if answer["status"] != 201 and len(self.refusals) < 5:
                self.refusals.append(answer["body"])


# -- checks -------------------------------------------------------------------------------------

def check_log(store: LogStore, signed: list[SignedCommand], base: int, rng: random.Random, samples: int = 200) -> None:
    size = store.size()
    if size != base + len(signed):
        raise SystemExit(f"the log holds {size} entries, expected {base} + {len(signed)}")
    for i in sorted(rng.sample(range(len(signed)), min(samples, len(signed)))):
        stored = store.entry(base + i)
        entry = stored.entry
        if entry["command"] != signed[i].command or entry["signature"] != signed[i].signature:
            raise SystemExit(f"entry {base + i} is not command {i} as sent")
        verify.verify_entry_signature(entry)
        if verify.leaf_hash(entry) != stored.leaf_hash:
            raise SystemExit(f"entry {base + i}: the stored leaf hash is not the entry's")
    roots, _ = independent_roots(store.engine, size, set())
    if store.root(size) != roots[size]:
        raise SystemExit("store.root() differs from the root recomputed from the stored leaves")


# -- output -------------------------------------------------------------------------------------

def print_summary(result: dict, stream) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=110, highlight=False)
    m, p = result["machine"], result["preparation"]
    raw, rv, led = result["raw"], result["raw_verify"], result["ledger"]
    ok = "[green]PASS[/]" if result["ratio_ok"] else "[red]FAIL[/]"
    table = Table(title=f"command ingest bench: N = {result['entries']:,}, batch = {result['batch']:,}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target / note")
    table.add_row("machine", f"{m['cores']} cores", f"{m['python']}, SQLite {m['sqlite']}")
    table.add_row("ledger code", m["ledger_revision"], "git commit the run imported")
    load = result["load_average"]
    table.add_row("load average (1 min)", f"{load['before'][0]:.2f} → {load['after'][0]:.2f}",
                  "before → after the timed phase (other work on the machine)")
    table.add_row("setup entries", f"{result['setup_entries']:,}",
                  f"genesis, {len(principals())} principals, {len(PROVINCES)} × 4 setup commands")
    table.add_row("preparation (sign N commands)", f"{p['seconds']:,.1f} s",
                  f"{p['rate']:,.0f} signed/s on {p['workers']} processes (not counted)")
    table.add_row("Ed25519 verify alone (1 core)", f"{result['verify_rate']:,.0f} /s", "reference only")
    for label, r in (("raw: JCS + SHA-256 + SQLite insert", raw), ("raw + Ed25519 verify", rv),
                     ("ledger: POST /v1/commands/batch", led)):
        table.add_row(label, f"{r['rate']:,.0f} entries/s",
                      f"{r['seconds']:,.1f} s; first 10% {r['rate_first_10pct']:,.0f}/s, "
                      f"last 10% {r['rate_last_10pct']:,.0f}/s")
    table.add_row("  ledger batch time", f"{led['batch_ms_median']:,.1f} ms",
                  f"median; p99 {led['batch_ms_p99']:,.1f} ms")
    table.add_row("ledger / (raw + verify)", f"{result['ratio']:.1%}", f"≥ {RATIO_TARGET:.0%}  {ok}")
    table.add_row("ledger / (raw + verify), CPU time", f"{result['cpu_ratio']:.1%}",
                  f"raw + verify {rv['cpu_rate']:,.0f}/s, ledger {led['cpu_rate']:,.0f}/s of process CPU")
    table.add_row("ledger / raw (no verify)", f"{result['ratio_vs_raw']:.1%}", "reference only")
    table.add_row("answers", ", ".join(f"{n:,} × {s}" for s, n in sorted(result["statuses"].items())),
                  "every command must be 201")
    table.add_row("balances checked", f"{result['balances_checked']:,}",
                  "every enterprise, exchange and issuer, against totals computed here")
    table.add_row("peak memory (this process)", f"{result['peak_rss_mb']:,.0f} MB", "mostly the prepared commands")
    console.print(table)
    console.print(f"overall: {ok}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="N, commands to ingest (default 100,000)")
    parser.add_argument("--batch", type=int, default=1000,
                        help=f"commands per batch, one transaction each (default 1000, at most {MAX_BATCH})")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="signing processes (default: every core)")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the ledger pipeline only into PATH "
                        "and print the top functions to stderr")
    parser.add_argument("--seed", type=int, default=20261123, help="for the sampled checks")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    args = parser.parse_args(argv)
    if args.entries < 1 or not 1 <= args.batch <= MAX_BATCH:
        parser.error(f"--entries must be at least 1 and --batch between 1 and {MAX_BATCH}")

    revision = ledger_revision()
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="ecoledger-ingest-bench-"))
    try:
        engine = create_database_engine(f"sqlite:///{workdir / 'ledger.db'}")
        upgrade(engine)
        store = LogStore(engine=engine, keyring=Keyring(directory=workdir / "keys", origin=ORIGIN))
        store.initialise()
        keys = {name: SigningKey.generate(name) for name, *_ in principals()}
        expected = Expected()
        for province in PROVINCES:
            for _, ops in setup_commands(province):
                expected.apply(ops, province)
        log("setup: principals, accounts, deposits, PDR assets and issuance in both provinces")
        base = run_setup(store, keys)

        log(f"preparing {args.entries:,} signed commands on {args.workers} processes")
        signed, envelopes, preparation = prepare(args.entries, args.batch, args.workers, keys, expected)
        verify_rate = measure_verify(signed)
        gc.collect()
        gc.freeze()  # the prepared commands are the client's: the collector need not rescan them

        log("ledger (POST /v1/commands/batch's work) interleaved batch by batch with the raw pipeline "
            "(JCS + SHA-256 + bare SQLite insert) and raw + Ed25519 verify")
        profiler = cProfile.Profile() if args.profile else None
        one_per_actor = list({c.actor: c for c in signed}.values())  # the raw pipeline's verify keys
        pipelines = {
            "raw": RawPipeline(workdir / "raw.sqlite", one_per_actor),
            "raw_verify": RawPipeline(workdir / "raw-verify.sqlite", one_per_actor, with_verify=True),
            "ledger": LedgerPipeline(store, envelopes, profiler),
        }
        load_before = os.getloadavg()
        measured = run_interleaved(pipelines, signed, args.batch)
        load_after = os.getloadavg()
        for name in ("raw", "raw_verify"):
            pipelines[name].close(args.entries)
        ledger = pipelines["ledger"]
        log(f"  raw {measured['raw']['rate']:,.0f}/s, raw + verify {measured['raw_verify']['rate']:,.0f}/s, "
            f"ledger {measured['ledger']['rate']:,.0f}/s")
        if profiler:
            profiler.dump_stats(args.profile)
            print(print_profile(args.profile), file=sys.stderr)

        log("checking: answers, log size, sampled entries, the tree's root, every balance")
        if ledger.statuses != Counter({201: args.entries}):
            raise SystemExit(f"not every command was appended: answers {dict(ledger.statuses)}; "
                             f"first refusals: {ledger.refusals}")
        check_log(store, signed, base, rng)
        balances_checked = expected.check(store)

        raw, raw_verify, stored = measured["raw"], measured["raw_verify"], measured["ledger"]
        ratio = stored["rate"] / raw_verify["rate"]
        result = {
            "entries": args.entries,
            "batch": args.batch,
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "sqlite": sqlite3.sqlite_version, "platform": platform.platform(),
                        "ledger_revision": revision},
            "setup_entries": base,
            "preparation": preparation,
            "verify_rate": verify_rate,
            "raw": raw,
            "raw_verify": raw_verify,
            "ledger": stored,
            "ratio": ratio,
            "ratio_ok": ratio >= RATIO_TARGET,
            "cpu_ratio": stored["cpu_rate"] / raw_verify["cpu_rate"],
            "ratio_vs_raw": stored["rate"] / raw["rate"],
            "statuses": {str(k): v for k, v in ledger.statuses.items()},
            "balances_checked": balances_checked,
            "load_average": {"before": load_before, "after": load_after},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        emit(result, args.json, print_summary)
        engine.dispose()
        return 0
    finally:
        discard(workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
