"""Log-level benchmark: batched appends and proofs from storage, against this machine's limits.

Run from the project root:

    .venv/bin/python bench/log_append.py [--entries N] [--batch B] [--database URL] [--json]

What it does, in one run:

1. Prepares N distinct commands and signs each with its actor's Ed25519 key, on every core
   (the client's cost, not the ledger's: it is timed and reported, but not counted).
2. The *raw pipeline*: for the same commands, builds the entry object
   {seq, time, command, signature, key}, encodes it with RFC 8785 (JCS), hashes it with
   SHA-256(0x00 ‖ leaf) and inserts (seq, actor, command_id, leaf) into a bare SQLite table,
   ``executemany`` per batch, one transaction per batch. No tree, no ORM.
3. ``LogStore`` appends of the same commands in batches of B, one write transaction each.
   Reports store/raw (the issue's target: >= 50%).
4. At N entries: median/p99 latency of inclusion proofs (random seq, size N) and consistency
   proofs (random first < second = N) from storage (target: median <= 1 ms). Every sampled
   proof is then checked with ``ledger.verify`` against roots this script computes itself from
   the stored leaves, and the store's ``root(N)`` must equal that root, so a store that returns
   garbage fails the bench.

Progress goes to stderr; the summary (or, with --json, a JSON document) goes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import hashlib
import io
import json
import math
import multiprocessing
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import rfc8785

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: E402
    Ed25519PrivateKey, Ed25519PublicKey)
from sqlalchemy import make_url, select  # noqa: E402

from ledger import verify  # noqa: E402
from ledger.database import create_database_engine, upgrade  # noqa: E402
from ledger.entry import SignedCommand  # noqa: E402
from ledger.keys import SigningKey, VerifierKey  # noqa: E402
from ledger.logkeys import Keyring  # noqa: E402
from ledger.models import LogEntry  # noqa: E402
from ledger.store import LogStore  # noqa: E402

ACTORS = [f"bench-op-{i}" for i in range(8)]
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
MEDIAN_TARGET_MS = 1.0
REVISION = "unknown"
RATIO_TARGET = 0.50


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- 1. preparing signed commands -------------------------------------------------------------

def make_command(i: int) -> dict:
    """Command number i: distinct (its id), shaped like a real transfer, deterministic."""
    actor = ACTORS[i % len(ACTORS)]
    return {
        "id": f"bench-{i:08d}",
        "actor": actor,
        "ops": [{
            "op": "transfer",
            "asset": "SC-COD-2026",
            "from": f"acct-{i % 977:05d}",
            "to": f"acct-{(i * 7 + 3) % 977:05d}",
            "quantity": f"{i % 100000}.{i % 1000:03d}",
            "memo": f"bench transfer {i}",
        }],
    }


_WORKER_KEYS: dict[str, Ed25519PrivateKey] = {}


def _init_worker(raw_keys: dict[str, bytes]) -> None:
    _WORKER_KEYS.clear()
    _WORKER_KEYS.update({actor: Ed25519PrivateKey.from_private_bytes(raw)
                         for actor, raw in raw_keys.items()})


def _sign_range(bounds: tuple[int, int]) -> list[str]:
    """Signatures (base64) over JCS(command) for commands [start, end)."""
    start, end = bounds
    out = []
    for i in range(start, end):
        command = make_command(i)
        signature = _WORKER_KEYS[command["actor"]].sign(rfc8785.dumps(command))
        out.append(base64.b64encode(signature).decode("ascii"))
    return out


def prepare(n: int, workers: int) -> tuple[list[SignedCommand], dict]:
    keys = {actor: SigningKey.generate(actor) for actor in ACTORS}
    key_strings = {actor: str(key.verifier) for actor, key in keys.items()}
    raw_keys = {actor: key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        for actor, key in keys.items()}
    chunk = 5000
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    commands: list[SignedCommand] = []
    started = time.perf_counter()
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                          else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(raw_keys,)) as pool:
        for (start, end), signatures in zip(bounds, pool.imap(_sign_range, bounds)):
            for i, signature in zip(range(start, end), signatures):
                command = make_command(i)
                commands.append(SignedCommand(command=command, signature=signature,
                                              key=key_strings[command["actor"]]))
            if end % 100_000 == 0 or end == n:
                log(f"  signed {end:,}/{n:,}")
    elapsed = time.perf_counter() - started
    return commands, {"seconds": elapsed, "workers": workers, "rate": n / elapsed}


def check_prepared(commands: list[SignedCommand], rng: random.Random, samples: int = 1000) -> None:
    """Every command distinct; a random sample's signatures verify with the ledger's verifier."""
    ids = {(c.actor, c.id) for c in commands}
    if len(ids) != len(commands):
        raise SystemExit("prepared commands are not distinct")
    for c in rng.sample(commands, min(samples, len(commands))):
        verify.verify_entry_signature({"seq": 0, "command": c.command,
                                       "signature": c.signature, "key": c.key})


def measure_verify(commands: list[SignedCommand], limit: int = 20_000) -> float:
    """Ed25519 verify of JCS(command) alone, one core (for reference: the ingest target)."""
    sample = commands[:limit]
    parsed = {c.key: VerifierKey.parse(c.key) for c in sample}
    started = time.perf_counter()
    for c in sample:
        key = parsed[c.key]
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(
            base64.b64decode(c.signature), rfc8785.dumps(c.command))
    return len(sample) / (time.perf_counter() - started)


# -- 2. the raw pipeline ----------------------------------------------------------------------

class RawPipeline:
    """JCS + SHA-256 + a bare SQLite table, one transaction per batch: the machine's limit."""

    def __init__(self, path: Path, commands: list[SignedCommand], *, with_verify: bool = False):
        self.connection = sqlite3.connect(path, isolation_level=None)
        # the same settings the ledger's engine gives SQLite (ledger/database.py)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, actor TEXT NOT NULL, "
                                "command_id TEXT NOT NULL, leaf BLOB NOT NULL)")
        self.keys = ({c.key: Ed25519PublicKey.from_public_bytes(VerifierKey.parse(c.key).public_key)
                      for c in commands[:len(ACTORS)]} if with_verify else None)

    def append(self, batch: list[SignedCommand], start: int) -> None:
        dumps, sha256, now, keys = rfc8785.dumps, hashlib.sha256, datetime.now, self.keys
        rows, hashes = [], []
        for seq, c in enumerate(batch, start):
            command = c.command
            if keys is not None:
                keys[c.key].verify(base64.b64decode(c.signature), dumps(command))
            leaf = dumps({"seq": seq, "time": now(UTC).strftime(TIME_FORMAT), "command": command,
                          "signature": c.signature, "key": c.key})
            hashes.append(sha256(b"\x00" + leaf).digest())
            rows.append((seq, command["actor"], command["id"], leaf))
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.executemany(
            "INSERT INTO entries (seq, actor, command_id, leaf) VALUES (?, ?, ?, ?)", rows)
        self.connection.execute("COMMIT")

    def close(self, expected: int) -> None:
        count = self.connection.execute("SELECT count(*) FROM entries").fetchone()[0]
        self.connection.close()
        if count != expected:
            raise SystemExit(f"raw pipeline stored {count} rows, not {expected}")


# -- 3. LogStore appends ----------------------------------------------------------------------

class StorePipeline:
    def __init__(self, store: LogStore, profiler: cProfile.Profile | None):
        self.store = store
        self.profiler = profiler

    def append(self, batch: list[SignedCommand], start: int) -> None:
        if self.profiler:
            self.profiler.enable()
        with self.store.writer() as writer:
            writer.prefetch((c.actor, c.id) for c in batch)  # as POST /v1/commands/batch does
            for c in batch:
                writer.append(c)
        if self.profiler:
            self.profiler.disable()


def run_interleaved(pipelines: dict[str, object], commands: list[SignedCommand], batch: int
                    ) -> dict[str, dict]:
    """Feed every batch to each pipeline in turn, timing each pipeline's batches (wall and CPU).

    Interleaving batch by batch means both see the same background load, the same database
    growth and the same state of the machine, so their ratio holds even on a busy machine.
    """
    wall = {name: [] for name in pipelines}
    cpu = {name: 0.0 for name in pipelines}
    report_every = max(1, len(commands) // 10)
    next_report = report_every
    for start in range(0, len(commands), batch):
        chunk = commands[start:start + batch]
        for name, pipeline in pipelines.items():
            c0, t0 = time.process_time(), time.perf_counter()
            pipeline.append(chunk, start)
            wall[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
        done = start + len(chunk)
        if done >= next_report:
            next_report += report_every
            log(f"  {done:,}/{len(commands):,}: " + ", ".join(
                f"{name} {done / sum(wall[name]):,.0f}/s" for name in pipelines))
    return {name: summarise_throughput(len(commands), wall[name], cpu[name], batch)
            for name in pipelines}


def summarise_throughput(n: int, batch_seconds: list[float], cpu_seconds: float, batch: int) -> dict:
    elapsed = sum(batch_seconds)
    tenth = max(1, len(batch_seconds) // 10)
    first, last = batch_seconds[:tenth], batch_seconds[-tenth:]
    sizes_first = min(n, tenth * batch)
    sizes_last = n - (len(batch_seconds) - tenth) * batch
    ms = sorted(s * 1000 for s in batch_seconds)
    return {
        "entries": n,
        "seconds": elapsed,
        "cpu_seconds": cpu_seconds,
        "rate": n / elapsed,
        "cpu_rate": n / cpu_seconds if cpu_seconds else float("nan"),
        "rate_first_10pct": sizes_first / sum(first),
        "rate_last_10pct": sizes_last / sum(last),
        "batch_ms_median": statistics.median(ms),
        "batch_ms_p99": percentile(ms, 0.99),
    }


# -- 4. proofs --------------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values), max(1, math.ceil(q * len(sorted_values))))
    return sorted_values[rank - 1]


def latency_summary(samples_ns: list[int]) -> dict:
    ms = sorted(s / 1e6 for s in samples_ns)
    return {"samples": len(ms), "median_ms": statistics.median(ms), "p90_ms": percentile(ms, 0.90),
            "p99_ms": percentile(ms, 0.99), "max_ms": ms[-1], "mean_ms": statistics.fmean(ms)}


def time_calls(call, args_list: list[tuple], warmup: int = 100) -> tuple[list, list[int]]:
    for args in args_list[:warmup]:
        call(*args)
    results, samples = [], []
    clock = time.perf_counter_ns
    for args in args_list:
        t0 = clock()
        result = call(*args)
        samples.append(clock() - t0)
        results.append(result)
    return results, samples


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def independent_roots(engine, size: int, wanted: set[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """Stream the stored leaves 0..size-1 and compute, without ledger.merkle, the RFC 9162 root
    of every tree size in ``wanted`` (and of ``size``), plus the leaf hash of every seq in
    ``wanted`` minus one (the inclusion samples are passed as seq + 1)."""
    roots: dict[int, bytes] = {}
    leaves: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # (level, hash) of complete subtrees, left to right

    def fold() -> bytes:
        result = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            result = _node(left, result)
        return result

    expected = 0
    with engine.connect() as connection:
        rows = connection.execution_options(stream_results=True, yield_per=10_000).execute(
            select(LogEntry.seq, LogEntry.leaf).where(LogEntry.seq < size).order_by(LogEntry.seq))
        for seq, leaf in rows:
            if seq != expected:
                raise SystemExit(f"the stored log has a gap: expected seq {expected}, found {seq}")
            expected += 1
            digest = hashlib.sha256(b"\x00" + bytes(leaf)).digest()
            if seq + 1 in wanted:
                leaves[seq] = digest
            level = 0
            while stack and stack[-1][0] == level:
                digest = _node(stack.pop()[1], digest)
                level += 1
            stack.append((level, digest))
            if seq + 1 in wanted or seq + 1 == size:
                roots[seq + 1] = fold()
    if expected != size:
        raise SystemExit(f"the stored log has {expected} entries below {size}")
    return roots, leaves


def measure_proofs(store: LogStore, commands: list[SignedCommand], size: int, samples: int,
                   rng: random.Random) -> dict:
    """Latency of proofs from storage at tree size ``size``, then every proof checked."""
    inclusion_args = [(rng.randrange(size), size) for _ in range(samples)]
    consistency_args = [(rng.randrange(1, size), size) for _ in range(samples)]
    inclusion, inclusion_ns = time_calls(store.inclusion_proof, inclusion_args)
    consistency, consistency_ns = time_calls(store.consistency_proof, consistency_args)
    root_ns = time_calls(store.root, [(size,)] * 200, warmup=20)[1]

    log("  checking every sampled proof against roots computed here from the stored leaves")
    wanted = {seq + 1 for seq, _ in inclusion_args} | {first for first, _ in consistency_args}
    roots, leaf_hashes = independent_roots(store.engine, size, wanted)
    root = roots[size]
    if store.root(size) != root:
        raise SystemExit("store.root(N) differs from the root computed from the stored leaves")
    entries = {}
    for (seq, _), proof in zip(inclusion_args, inclusion):
        verify.verify_inclusion(seq, size, leaf_hashes[seq], proof, root)
        if seq not in entries:
            entries[seq] = store.entry(seq)
    # The sampled leaves are canonical entries of the commands appended at those seqs
    # (seq 0 is the genesis entry; command i went to seq i + 1).
    for seq, stored in entries.items():
        entry = stored.entry
        if verify.leaf_hash(entry) != leaf_hashes[seq] or entry["seq"] != seq:
            raise SystemExit(f"entry {seq}: stored leaf is not the canonical entry")
        if seq > 0 and entry["command"] != commands[seq - 1].command:
            raise SystemExit(f"entry {seq}: not the command appended at that seq")
    for (first, _), proof in zip(consistency_args, consistency):
        verify.verify_consistency(first, size, proof, roots[first], root)
    # and garbage must fail: a proof with one flipped bit is refused
    seq, proof = inclusion_args[0][0], list(inclusion[0])
    if proof:
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
        try:
            verify.verify_inclusion(seq, size, leaf_hashes[seq], proof, root)
        except verify.VerificationError:
            pass
        else:
            raise SystemExit("a corrupted proof verified: the check is broken")
    return {
        "tree_size": size,
        "inclusion": latency_summary(inclusion_ns),
        "consistency": latency_summary(consistency_ns),
        "root": latency_summary(root_ns),
        "proofs_verified": len(inclusion) + len(consistency),
        "root_hash": base64.b64encode(root).decode(),
        "mean_inclusion_hashes": statistics.fmean(len(p) for p in inclusion),
        "mean_consistency_hashes": statistics.fmean(len(p) for p in consistency),
    }


# -- output -----------------------------------------------------------------------------------

def print_summary(result: dict, stream) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=100, highlight=False)
    m, p, raw, st = result["machine"], result["preparation"], result["raw"], result["store"]
    pr = result["proofs"]
    ok = lambda good: "[green]PASS[/]" if good else "[red]FAIL[/]"  # noqa: E731

    table = Table(title=f"log append bench: N = {result['entries']:,}, batch = {result['batch']:,}",
                  show_lines=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target / note")
    table.add_row("machine", f"{m['cores']} cores", f"{m['python']}, SQLite {m['sqlite']}, {m['database']}")
    table.add_row("ledger code", m["ledger_revision"], "git commit the run imported")
    load = result["load_average"]
    table.add_row("load average (1 min)", f"{load['before'][0]:.2f} → {load['after'][0]:.2f}",
                  "before → after the append phase (other work on the machine)")
    table.add_row("preparation (sign N commands)", f"{p['seconds']:,.1f} s",
                  f"{p['rate']:,.0f} signed/s on {p['workers']} processes (not counted)")
    table.add_row("Ed25519 verify alone (1 core)", f"{result['verify_rate']:,.0f} /s", "reference only")
    table.add_row("raw: JCS + SHA-256 + SQLite insert", f"{raw['rate']:,.0f} entries/s",
                  f"{raw['seconds']:,.1f} s; first 10% {raw['rate_first_10pct']:,.0f}/s, "
                  f"last 10% {raw['rate_last_10pct']:,.0f}/s")
    if result.get("raw_with_verify"):
        rv = result["raw_with_verify"]
        table.add_row("raw + Ed25519 verify", f"{rv['rate']:,.0f} entries/s", f"{rv['seconds']:,.1f} s")
    table.add_row("LogStore appends", f"{st['rate']:,.0f} entries/s",
                  f"{st['seconds']:,.1f} s; first 10% {st['rate_first_10pct']:,.0f}/s, "
                  f"last 10% {st['rate_last_10pct']:,.0f}/s")
    table.add_row("  batch commit time", f"{st['batch_ms_median']:,.1f} ms",
                  f"median; p99 {st['batch_ms_p99']:,.1f} ms")
    table.add_row("store / raw", f"{result['ratio']:.1%}", f"≥ {RATIO_TARGET:.0%}  {ok(result['ratio_ok'])}")
    table.add_row("store / raw, by CPU time", f"{result['cpu_ratio']:.1%}",
                  f"raw {raw['cpu_rate']:,.0f}/s, store {st['cpu_rate']:,.0f}/s of process CPU")
    if result.get("ratio_vs_verify") is not None:
        table.add_row("store / (raw + verify)", f"{result['ratio_vs_verify']:.1%}", "reference only")
    for name in ("inclusion", "consistency"):
        s = pr[name]
        table.add_row(f"{name} proof, median", f"{s['median_ms']:.3f} ms",
                      f"≤ {MEDIAN_TARGET_MS:g} ms  {ok(s['median_ms'] <= MEDIAN_TARGET_MS)}")
        table.add_row(f"{name} proof, p99", f"{s['p99_ms']:.3f} ms",
                      f"p90 {s['p90_ms']:.3f}, max {s['max_ms']:.3f}, n = {s['samples']:,}")
    table.add_row("root(N), median", f"{pr['root']['median_ms']:.3f} ms", f"p99 {pr['root']['p99_ms']:.3f} ms")
    table.add_row("peak memory (this process)", f"{result['peak_rss_mb']:,.0f} MB",
                  "mostly the N prepared commands")
    table.add_row("proofs verified", f"{pr['proofs_verified']:,}",
                  f"against roots recomputed from stored leaves, tree size {pr['tree_size']:,}")
    console.print(table)
    console.print(f"overall: {ok(result['pass'])}")


def emit(result: dict, as_json: bool, print_summary) -> None:
    """The summary on stdout; with --json, the JSON document on stdout and the summary on stderr."""
    if as_json:
        print(json.dumps(result, indent=2))
        print_summary(result, sys.stderr)
    else:
        print_summary(result, sys.stdout)


def discard(workdir: Path, *, keep: bool) -> None:
    """Remove the run's temporary directory, unless --keep asked to keep it."""
    if keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def ledger_revision() -> str:
    """The commit the project's code was read from, and whether it had local changes."""
    packages = ["ledger", "contracts", "settlement", "api"]
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", *packages],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + local changes" if dirty else "")


def database_label(url: str) -> str:
    return make_url(url).get_backend_name()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="N (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction (default 1000)")
    parser.add_argument("--database", help="database URL for the LogStore (default: a temporary SQLite file); "
                        "its log must be empty")
    parser.add_argument("--samples", type=int, default=2000, help="proofs of each kind to time (default 2000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="signing processes (default: every core)")
    parser.add_argument("--raw-verify", action="store_true",
                        help="also run the raw pipeline with Ed25519 verify (DESIGN.md's ingest baseline)")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the LogStore appends into PATH "
                        "and print the top entries to stderr")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    args = parser.parse_args(argv)
    if args.entries < 2 or args.batch < 1:
        parser.error("--entries must be at least 2 and --batch at least 1")

    global REVISION
    REVISION = ledger_revision()  # read at start: others may commit while a long run goes on
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="ecoledger-bench-"))
    url = args.database or f"sqlite:///{workdir / 'ledger.sqlite'}"
    try:
        log(f"preparing {args.entries:,} signed commands on {args.workers} processes")
        commands, preparation = prepare(args.entries, args.workers)
        log(f"  prepared in {preparation['seconds']:.1f} s; checking them")
        check_prepared(commands, rng)
        verify_rate = measure_verify(commands)
        # The prepared commands are the client's; keep the collector from rescanning them.
        gc.collect()
        gc.freeze()

        log(f"LogStore into {database_label(url)}, interleaved batch by batch with the raw pipeline "
            "(JCS + SHA-256 + bare SQLite insert)" + (" and raw + Ed25519 verify" if args.raw_verify else ""))
        engine = create_database_engine(url)
        upgrade(engine)
        store = LogStore(engine=engine, keyring=Keyring(directory=workdir / "keys", origin="bench.ecoledger.test/log"))
        if store.size() != 0:
            raise SystemExit(f"the log at {args.database} is not empty: use an empty database")
        store.initialise()
        profiler = cProfile.Profile() if args.profile else None
        pipelines = {"raw": RawPipeline(workdir / "raw.sqlite", commands)}
        if args.raw_verify:
            pipelines["raw_with_verify"] = RawPipeline(workdir / "raw-verify.sqlite", commands, with_verify=True)
        pipelines["store"] = StorePipeline(store, profiler)
        load_before = os.getloadavg()
        measured = run_interleaved(pipelines, commands, args.batch)
        load_after = os.getloadavg()
        for name, pipeline in pipelines.items():
            if isinstance(pipeline, RawPipeline):
                pipeline.close(args.entries)
        raw, stored, raw_verify = measured["raw"], measured["store"], measured.get("raw_with_verify")
        log(f"  raw {raw['rate']:,.0f}/s, store {stored['rate']:,.0f}/s")
        if store.size() != args.entries + 1:
            raise SystemExit(f"the log holds {store.size()} entries, expected {args.entries + 1}")
        if profiler:
            profiler.dump_stats(args.profile)
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs()
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
            print(out.getvalue(), file=sys.stderr)

        log(f"proofs at tree size {args.entries:,}: {args.samples:,} of each kind")
        proofs = measure_proofs(store, commands, args.entries, args.samples, rng)

        ratio = stored["rate"] / raw["rate"]
        result = {
            "entries": args.entries,
            "batch": args.batch,
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "sqlite": sqlite3.sqlite_version, "database": database_label(url),
                        "platform": platform.platform(), "ledger_revision": REVISION},
            "preparation": preparation,
            "verify_rate": verify_rate,
            "raw": raw,
            "raw_with_verify": raw_verify,
            "store": stored,
            "ratio": ratio,
            "ratio_ok": ratio >= RATIO_TARGET,
            "ratio_vs_verify": stored["rate"] / raw_verify["rate"] if raw_verify else None,
            "cpu_ratio": stored["cpu_rate"] / raw["cpu_rate"],
            "load_average": {"before": load_before, "after": load_after},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "proofs": proofs,
        }
        result["pass"] = (result["ratio_ok"]
                          and proofs["inclusion"]["median_ms"] <= MEDIAN_TARGET_MS
                          and proofs["consistency"]["median_ms"] <= MEDIAN_TARGET_MS)
        emit(result, args.json, print_summary)
        engine.dispose()
        return 0
    finally:
        discard(workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
