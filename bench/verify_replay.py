"""Auditor benchmark: full replay verification of an export bundle, against this machine's limits.

Run from the project root:

    .venv/bin/python bench/verify_replay.py [--entries N] [--bundle DIR] [--workers W] [--json]

What it does, in one run:

1. **Builds** (unless ``--bundle DIR`` already holds them) a realistic log of N entries through
   the contracts, as ``POST /v1/commands`` appends them: the genesis entry, three principals
   (an exchange and an issuer of Sichuan, an exchange of Chongqing), eight enterprises with valid
   统一社会信用代码, CNY deposits, a PDR asset defined and issued to each, then transfers (nine
   in ten) and trades settled at once (one in ten) between them, each signed by the exchange's
   Ed25519 key and submitted with ``contracts.commands.submit`` in large ``store.writer()``
   batches, on a temporary SQLite database. Two bundles are exported with ``ecoledger export``'s
   code (``ledger.export.export_bundle``): one when the log reaches N/10 entries, one at N. Not
   timed against anything; its rate is printed.
2. **The raw limit**, on every core: for each line of the N-entry bundle's ``entries.jsonl``,
   SHA-256(0x00 ‖ leaf) and the Ed25519 verify of the actor's signature over JCS(command) (the
   command's bytes are sliced out of the canonical leaf; keys parsed once per key string), with a
   process pool of ``os.cpu_count()`` workers, each reading its own byte range of the file.
   Process start-up is not counted. Entries/s.
3. **audit()** of each bundle (``settlement.auditor.audit(DirectorySource(bundle))``, workers =
   every core), each in a fresh subprocess so that its peak memory is its own: entries/s, the
   ratio audit/raw, and peak RSS — the audit process's VmHWM / ``RUSAGE_SELF`` maxrss, the
   largest signature worker's ``RUSAGE_CHILDREN`` maxrss, and VmRSS sampled every 50 ms in a
   thread. Memory is flat if the peak at N is about the peak at N/10.
4. With ``--profile PATH``, the audit of the N-entry bundle runs once more under cProfile in
   the main process's own subprocess (workers = every core; the signature workers are not
   profiled) and the top functions are printed to stderr.

DESIGN.md target: "full replay verification of 1,000,000 entries using every core, memory flat
(< 256 MB)". The summary prints PASS/FAIL for the memory bound; the speed target is the ratio.

Progress goes to stderr; the summary (or, with --json, a JSON document) goes to stdout. The
exit status is 0 whenever the run completed, even if a target is missed; 1 if an audit is not ok.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import multiprocessing
import os
import platform
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ORIGIN = "bench.ecoledger.local/log"
MEMORY_TARGET_MB = 256
ENTERPRISES = 8


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# -- 1. building the log -------------------------------------------------------------------------


def _uscc(first17: str) -> str:
    from contracts.uscc import check_character

    return first17 + check_character(first17)


def build(directory: Path, entries: int, batch: int) -> dict:
    """Build a log of ``entries`` entries and export bundles at entries // 10 and at entries."""
    from contracts.commands import submit, submit_ledger
    from ledger.database import create_database_engine, upgrade
    from ledger.encoding import b64encode, canonical
    from ledger.export import export_bundle
    from ledger.keys import SigningKey
    from ledger.logkeys import Keyring
    from ledger.store import LogStore
    from settlement.audit import AUDITED_TABLES

    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "ledger.db"
    if database.exists():
        raise SystemExit(f"{database} exists: remove {directory} or pass another --bundle")
    engine = create_database_engine(f"sqlite:///{database}")
    upgrade(engine)
    store = LogStore(engine=engine, keyring=Keyring(directory=directory / "keys", origin=ORIGIN))
    store.initialise()

    exchange = SigningKey.generate("sc-exchange")
    issuer = SigningKey.generate("sc-sthj")
    cq_exchange = SigningKey.generate("cq-exchange")
    accounts = [f"SC:ENT:{_uscc(f'91510100MA{n:07d}')}" for n in range(1, ENTERPRISES + 1)]
    counter = iter(range(10**12))

    def signed(key: SigningKey, *ops: dict) -> dict:
        command = {"id": f"bench-{next(counter):09d}", "actor": key.name, "ops": list(ops)}
        return {"command": command, "signature": b64encode(key.sign(canonical(command)))}

    with store.writer() as writer:
        for key, role, extra in ((exchange, "operator", {}), (issuer, "issuer", {"instruments": ["PDR"]}),
                                 (cq_exchange, "operator", {})):
            province = "CQ" if key.name.startswith("cq") else "SC"
            submit_ledger(writer, f"principal-add:{key.name}", [{
                "op": "principal.add", "name": key.name, "role": role, "province": province,
                "key": str(key.verifier), **extra}])
        submit(writer, **signed(exchange, *({"op": "account.open", "account": a, "name": f"成都第{n}号化工有限公司"}
                                            for n, a in enumerate(accounts, start=1))))
        for account in accounts:
            submit(writer, **signed(exchange, {"op": "cny.deposit", "account": account, "amount": "100000000.00"}))
        outcome = submit(writer, **signed(issuer, {"op": "asset.define", "instrument": "PDR", "attributes": {
            "pollutant": "COD", "valid_from": "2025-01-01", "valid_until": "2029-12-31"}}))
        asset = outcome.results[0]["asset"]
        for account in accounts:
            submit(writer, **signed(issuer, {"op": "issue", "asset": asset, "to": account, "quantity": "10000000.000"}))

    def command(i: int) -> dict:
        seller, buyer = accounts[i % ENTERPRISES], accounts[(i * 3 + 1) % ENTERPRISES]
        if seller == buyer:
            buyer = accounts[(i + 1) % ENTERPRISES]
        if i % 10 == 9:
            return signed(exchange, {"op": "trade", "asset": asset, "quantity": f"{1 + i % 7}.{i % 1000:03d}",
                                     "price": f"{20 + i % 50}.{i % 100:02d}", "seller": seller, "buyer": buyer})
        return signed(exchange, {"op": "transfer", "asset": asset, "from": seller, "to": buyer,
                                 "quantity": f"{i % 97}.{(i * 7) % 1000:03d}" if i % 97 else "0.001"})

    tenth = max(entries // 10, store.size() + 1)
    bundles = {}
    started, i = time.monotonic(), 0
    last_report = started
    size = store.size()
    for target, name in ((tenth, "tenth"), (entries, "full")):
        while size < target:
            with store.writer() as writer:
                for _ in range(min(batch, target - size)):
                    submit(writer, **command(i))
                    i += 1
                size = writer.size
            now = time.monotonic()
            if now - last_report > 30 or size == target:
                rate = i / (now - started)
                log(f"built {size:,} / {entries:,} entries ({rate:,.0f} commands/s; "
                    f"~{(entries - size) / rate / 60:.1f} min to go; load {loadavg()})")
                last_report = now
        t0 = time.monotonic()
        export_bundle(store, directory / name, AUDITED_TABLES)
        bundles[name] = size
        exported = time.monotonic() - t0
        log(f"exported {size:,} entries to {directory / name} in {exported:.1f} s")
        started += exported  # the export does not count in the build's rate
    seconds = time.monotonic() - started
    engine.dispose()
    info = {"entries": entries, "tenth": tenth, "commands_per_second": round(i / seconds, 1),
            "build_seconds": round(seconds, 1), "batch": batch}
    (directory / "build.json").write_text(json.dumps(info, indent=1))
    return info


# -- 2. the raw limit ------------------------------------------------------------------------------


def _line_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """``parts`` byte ranges of ``path`` that start and end on line boundaries."""
    size = path.stat().st_size
    cuts = [0]
    with path.open("rb") as file:
        for k in range(1, parts):
            file.seek(size * k // parts)
            file.readline()
            cuts.append(min(file.tell(), size))
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _raw_range(args: tuple[str, int, int]) -> int:
    """SHA-256 of each leaf and Ed25519 verify of each command's signature in a byte range."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path, start, end = args
    keys: dict[bytes, Ed25519PublicKey] = {}
    sha256 = hashlib.sha256
    count = 0
    with open(path, "rb") as file:
        file.seek(start)
        data = file.read(end - start)
    for line in data.splitlines():
        leaf = line[line.index(b',"entry":') + 9:-1]  # the canonical leaf, verbatim
        sha256(b"\x00" + leaf).digest()
        key_at = leaf.rindex(b',"key":"')  # JCS sorts keys: command, key, seq, signature, time
        message = leaf[len(b'{"command":'):key_at]  # JCS(command), as it sits inside JCS(entry)
        key_string = leaf[key_at + 8:leaf.index(b'"', key_at + 8)]
        sig_at = leaf.rindex(b'"signature":"') + 13
        signature = base64.b64decode(leaf[sig_at:leaf.index(b'"', sig_at)])
        public = keys.get(key_string)
        if public is None:
            raw = base64.b64decode(key_string.split(b"+", 2)[2])
            public = keys[key_string] = Ed25519PublicKey.from_public_bytes(raw[1:])
        public.verify(signature, message)  # raises InvalidSignature: the bundle would be bad
        count += 1
    return count


def raw_limit(bundle: Path, workers: int) -> dict:
    path = bundle / "entries.jsonl"
    ranges = _line_ranges(path, workers * 8)
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        pool.map(abs, range(workers))  # start the workers before the clock
        started = time.monotonic()
        count = sum(pool.map(_raw_range, [(str(path), a, b) for a, b in ranges], chunksize=1))
        seconds = time.monotonic() - started
    return {"entries": count, "seconds": round(seconds, 3), "entries_per_second": round(count / seconds, 1),
            "workers": workers}


# -- 3. audit() in a subprocess of its own ----------------------------------------------------------


def _vm(field: str) -> int:
    """A /proc/self/status field in kB (0 if unavailable)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def audit_child(bundle: Path, workers: int, profile: str | None) -> None:
    """Runs in the subprocess: audit the bundle, print one JSON line with timings and memory."""
    from ledger.sources import DirectorySource
    from settlement.auditor import audit

    peak = {"vmrss_kb": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["vmrss_kb"] = max(peak["vmrss_kb"], _vm("VmRSS"))
            stop.wait(0.05)

    baseline_kb = _vm("VmRSS")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    profiler = cProfile.Profile() if profile else None
    started = time.monotonic()
    if profiler:
        profiler.enable()
    report = audit(DirectorySource(bundle), workers=workers)
    if profiler:
        profiler.disable()
    seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    if profiler:
        profiler.dump_stats(profile)
    print(json.dumps({
        "ok": report.ok, "error": report.error, "entries": report.entries_checked, "size": report.size,
        "checkpoints": report.checkpoints_checked, "tables": len(report.tables_compared),
        "seconds": round(seconds, 3), "entries_per_second": round(report.entries_checked / seconds, 1),
        "baseline_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(max(_vm("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024, 1),
        "sampled_rss_mb": round(peak["vmrss_kb"] / 1024, 1),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }), flush=True)


def run_audit(bundle: Path, workers: int, profile: str | None = None) -> dict:
    command = [sys.executable, __file__, "--audit-child", str(bundle), "--workers", str(workers)]
    if profile:
        command += ["--profile", profile]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"the audit subprocess failed:\n{result.stderr[-5000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_profile(path: str, limit: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="N, the log's size (default 1,000,000)")
    parser.add_argument("--bundle", type=Path, help="keep the bundles here (DIR/tenth, DIR/full) and reuse them "
                                                    "if they exist; default: a temporary directory")
    parser.add_argument("--batch", type=int, default=5000, help="commands per write transaction when building")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    parser.add_argument("--profile", help="also profile the audit of the N bundle with cProfile into PATH")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    parser.add_argument("--audit-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.audit_child:
        audit_child(args.audit_child, args.workers, args.profile)
        return

    temporary = None
    if args.bundle is None:
        temporary = Path(tempfile.mkdtemp(prefix="ecoledger-verify-bench-"))
        directory = temporary
    else:
        directory = args.bundle
    try:
        result = bench(directory, args)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(summary(result))
    if not (result["audit_full"]["ok"] and result["audit_tenth"]["ok"]):
        sys.exit(1)


def bench(directory: Path, args) -> dict:
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
               "load_before": loadavg()}
    if (directory / "full" / "manifest.json").exists() and (directory / "tenth" / "manifest.json").exists():
        built = json.loads((directory / "build.json").read_text()) if (directory / "build.json").exists() else {}
        log(f"reusing the bundles in {directory}")
    else:
        log(f"building a log of {args.entries:,} entries in {directory} (batches of {args.batch:,})")
        built = build(directory, args.entries, args.batch)
    sizes = {name: json.loads((directory / name / "manifest.json").read_text())["size"] for name in ("tenth", "full")}

    log(f"raw limit: SHA-256 + Ed25519 verify of {sizes['full']:,} entries on {args.workers} processes")
    raw = raw_limit(directory / "full", args.workers)
    log(f"raw: {raw['entries_per_second']:,.0f} entries/s ({raw['seconds']} s); load {loadavg()}")
    audits = {}
    for name in ("tenth", "full"):
        log(f"audit() of {sizes[name]:,} entries ({name}) with {args.workers} workers")
        audits[name] = run_audit(directory / name, args.workers)
        log(f"audit {name}: {audits[name]['entries_per_second']:,.0f} entries/s, {audits[name]['seconds']} s, "
            f"ok={audits[name]['ok']}, peak RSS {audits[name]['peak_rss_mb']} MB; load {loadavg()}")
    raw_again = raw_limit(directory / "full", args.workers)  # the load may change over a long run
    log(f"raw again: {raw_again['entries_per_second']:,.0f} entries/s")
    profile_text = None
    if args.profile:
        log(f"profiling audit() of the full bundle into {args.profile}")
        audits["profiled"] = run_audit(directory / "full", args.workers, args.profile)
        profile_text = print_profile(args.profile)
        print(profile_text, file=sys.stderr)
    raw_rate = max(raw["entries_per_second"], raw_again["entries_per_second"])
    full, tenth = audits["full"], audits["tenth"]
    peak_full = max(full["peak_rss_mb"], full["worker_peak_rss_mb"])
    peak_tenth = max(tenth["peak_rss_mb"], tenth["worker_peak_rss_mb"])
    machine["load_after"] = loadavg()
    return {
        "machine": machine, "build": built, "sizes": sizes, "raw": raw, "raw_again": raw_again,
        "audit_tenth": tenth, "audit_full": full, "profiled": audits.get("profiled"),
        "ratio_audit_to_raw": round(full["entries_per_second"] / raw_rate, 4),
        "memory": {"peak_tenth_mb": peak_tenth, "peak_full_mb": peak_full,
                   "growth_mb": round(peak_full - peak_tenth, 1), "target_mb": MEMORY_TARGET_MB,
                   "pass": peak_full < MEMORY_TARGET_MB},
    }


def summary(r: dict) -> str:
    full, tenth, raw = r["audit_full"], r["audit_tenth"], r["raw"]
    raw_rate = max(raw["entries_per_second"], r["raw_again"]["entries_per_second"])
    m = r["memory"]
    lines = [
        "verify_replay: full replay verification of an export bundle",
        f"  machine          {r['machine']['cpus']} CPUs, Python {r['machine']['python']}, load "
        f"{r['machine']['load_before']} -> {r['machine']['load_after']}",
        f"  N                {r['sizes']['full']:,} entries (N/10 bundle: {r['sizes']['tenth']:,})",
    ]
    if r["build"]:
        lines.append(f"  build            {r['build'].get('commands_per_second', '?'):,} commands/s through the contracts "
                     f"({r['build'].get('build_seconds', '?')} s, batches of {r['build'].get('batch', '?')})")
    lines += [
        f"  (a) raw limit    {raw_rate:>12,.0f} entries/s  SHA-256 + Ed25519 verify, {raw['workers']} processes "
        f"(runs: {raw['entries_per_second']:,.0f}, {r['raw_again']['entries_per_second']:,.0f})",
        f"  (b) audit() N    {full['entries_per_second']:>12,.0f} entries/s  {full['seconds']} s, ok={full['ok']}, "
        f"{full['checkpoints']} checkpoints, {full['tables']} tables",
        f"      audit() N/10 {tenth['entries_per_second']:>12,.0f} entries/s  {tenth['seconds']} s, ok={tenth['ok']}",
        f"  ratio (b)/(a)    {r['ratio_audit_to_raw']:>12.1%}",
        f"  peak RSS N/10    {m['peak_tenth_mb']:>9.1f} MB   (audit process {tenth['peak_rss_mb']} MB, sampled "
        f"{tenth['sampled_rss_mb']} MB; largest worker {tenth['worker_peak_rss_mb']} MB)",
        f"  peak RSS N       {m['peak_full_mb']:>9.1f} MB   (audit process {full['peak_rss_mb']} MB, sampled "
        f"{full['sampled_rss_mb']} MB; largest worker {full['worker_peak_rss_mb']} MB)",
        f"  memory           {'PASS' if m['pass'] else 'FAIL'}: peak {m['peak_full_mb']} MB < {m['target_mb']} MB; "
        f"growth N/10 -> N {m['growth_mb']:+.1f} MB",
    ]
    if not full["ok"]:
        lines.append(f"  AUDIT FAILED     {full['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
