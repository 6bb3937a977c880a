"""HTTP append benchmark: single-command POST /v1/commands under gunicorn, against a bare Flask endpoint.

Run from the project root:

    .venv/bin/python bench/http_append.py [--requests M] [--clients C] [--json]

What it does, in one run:

1. **The ledger server**: ``ecoledger serve`` on a free port, as the end-to-end tests start it
   (``tests/support/server.py``), on a temporary home with a temporary SQLite database. The
   principals of ``bench/command_ingest.py`` (an exchange and a PDR issuer per province) are
   registered with ``ecoledger principal add … --json`` (token and key file); their accounts,
   CNY deposits, PDR assets and issuance are submitted with ``api.client.Client``.
2. **The bare server**: a Flask app with one route, ``POST /v1/commands``, that parses the JSON
   body and answers a small JSON object with 201 — what the HTTP, gunicorn and Flask floor
   costs — run by this script (``--bare-server``) with the ledger's own gunicorn settings
   (``api.serve.gunicorn_options`` from the same settings: bind host, worker count, sync worker
   class, one thread, timeout, access log, logging) and the same ``--workers``.
3. **Requests**: M distinct commands of the two exchanges (transfers, and one in ten trades
   settled at once, as in ``command_ingest.py``), signed before anything is timed, each POSTed
   alone with its exchange's token. C client processes (``http.client``, one connection per
   server each; gunicorn's sync workers close it after every answer, the client reconnects)
   send them in rounds of R requests; each round goes to both servers, in alternating order,
   so both see the same load. The bare server gets the very same request bytes. A few warm-up
   requests go to each server first (not counted; the ledger's are distinct commands).
   Reported: requests/s (requests / the rounds' wall time), latency p50/p90/p99/max, the ratio
   ledger/bare (DESIGN.md: >= 40%), the per-round ratios, and each server's CPU per request
   (master and workers, from /proc) and the clients'.
4. **Checks**: every ledger answer is 201 with a distinct seq, exactly the seqs after the
   warm-up; the checkpoint's size grew by M; a sample of entries read back over HTTP are the
   commands sent with valid signatures; every balance is what the commands should leave; every
   bare answer is 201.

Progress goes to stderr; the summary (or, with --json, a JSON document) goes to stdout. The exit
status is 0 whenever the run completed, even if the target is missed; non-zero if a check fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT), str(BENCH), str(ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from command_ingest import (PROVINCES, Expected, exchange_name, principals, setup_commands,  # noqa: E402
                            workload_ops)
from log_append import discard, emit, latency_summary, ledger_revision, log  # noqa: E402
from support.server import READY_PATH, LedgerServer, free_port, ledger_env  # noqa: E402

from gunicorn.config import Config as GunicornConfig  # noqa: E402

from api.client import Client, load_key, sign_command  # noqa: E402
from api.serve import gunicorn_options  # noqa: E402
from api.settings import Settings, load_settings  # noqa: E402
from ledger import verify  # noqa: E402

ORIGIN = "bench.ecoledger.local/log"
RATIO_TARGET = 0.40
HOST = "127.0.0.1"
PATH = "/v1/commands"


# -- the bare server (this script with --bare-server) ------------------------------------------

def bare_app():
    """One JSON endpoint that parses the body and answers a small object: the floor."""
    from flask import Flask, request

    app = Flask("bare")

    @app.post(PATH)
    def post_command():
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return {"code": "INVALID_JSON"}, 400
        command = body.get("command")
        return {"received": command.get("id") if isinstance(command, dict) else None}, 201

    @app.get(READY_PATH)
    def ready():  # what LedgerServer.wait_ready polls
        return "bare\n"

    return app


def serve_bare(bind: str, workers: int) -> None:
    """Run the bare app under gunicorn with the ledger's options (``ecoledger serve``'s)."""
    from dataclasses import replace

    from api.serve import GunicornServer

    class BareServer(GunicornServer):
        def load(self):
            return bare_app()

    BareServer(replace(load_settings(), server_bind=bind, server_workers=workers)).run()


def start_bare(workdir: Path, env: dict[str, str], workers: int) -> LedgerServer:
    port = free_port()
    stdout_path, stderr_path = workdir / "bare.stdout.log", workdir / "bare.stderr.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--bare-server", f"{HOST}:{port}",
               "--workers", str(workers)]
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=stdout,
                                   stderr=stderr, start_new_session=True)
    server = LedgerServer(process=process, url=f"http://{HOST}:{port}", env=env,
                          stdout_path=stdout_path, stderr_path=stderr_path)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def server_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a gunicorn master and its workers so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        total = 0
        for p in [pid, *map(int, children)]:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    return total / ticks


# -- the ledger: principals, accounts, assets ---------------------------------------------------

def set_up_ledger(server: LedgerServer, expected: Expected) -> tuple[dict[str, Client], dict[str, str]]:
    """Register the principals with the CLI and prepare both provinces with the Python client;
    returns each principal's client and token."""
    clients, tokens = {}, {}
    for name, role, province, instruments in principals():
        options = [option for code in instruments for option in ("--instrument", code)]
        info = json.loads(server.cli("principal", "add", name, "--role", role, "--province", province,
                                     *options, "--json"))
        key = load_key(Path(info["private_key_path"]), name)
        clients[name] = Client(server.url, token=info["token"], name=name, key=key)
        tokens[name] = info["token"]
    for province in PROVINCES:
        for signer, ops in setup_commands(province):
            clients[signer].submit(ops)  # raises ClientError if refused
            expected.apply(ops, province)
    return clients, tokens


def prepare_requests(clients: dict[str, Client], tokens: dict[str, str], count: int, first: int,
                     expected: Expected) -> tuple[list[tuple[bytes, dict]], list[dict]]:
    """Signed single-command requests i = first … first + count - 1: (body, headers) and commands."""
    requests, commands = [], []
    names = list(PROVINCES)
    for i in range(first, first + count):
        province = names[i % len(names)]
        client = clients[exchange_name(province)]
        ops = workload_ops(i, province)
        expected.apply(ops, province)
        envelope = sign_command(client.key, client.command(ops, command_id=f"{client.name}-http-{i:08d}"))
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": f"Bearer {tokens[client.name]}"}
        requests.append((body, headers))
        commands.append(envelope["command"])
    return requests, commands


# -- the clients --------------------------------------------------------------------------------

_REQUESTS: list[tuple[bytes, dict]] = []
"""The prepared requests, set before the client processes fork (they inherit them)."""
PIDS: dict[str, int] = {}
"""The gunicorn masters' process ids, for their CPU time."""


def _client_loop(conn, targets: dict[str, tuple[str, int]]) -> None:
    """A client process: for each job (server, request indices) send them one after the other,
    answer (latencies ns, statuses, seqs, CPU seconds)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    connections = {name: http.client.HTTPConnection(host, port, timeout=120) for name, (host, port) in targets.items()}
    while True:
        job = conn.recv()
        if job is None:
            break
        name, indices = job
        connection = connections[name]
        latencies, statuses, seqs = [], [], []
        cpu = time.process_time()
        for i in indices:
            body, headers = _REQUESTS[i]
            started = time.perf_counter_ns()
            try:
                connection.request("POST", PATH, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                status, data = 0, repr(error).encode()
            latencies.append(time.perf_counter_ns() - started)
            statuses.append(status)
            if status in (200, 201):
                seqs.append(json.loads(data).get("seq"))
            else:
                seqs.append(data[:300].decode("utf-8", "replace"))
        conn.send((latencies, statuses, seqs, time.process_time() - cpu))
    for connection in connections.values():
        connection.close()


class Clients:
    """C client processes; :meth:`run` spreads a round's requests over them and waits for all."""

    def __init__(self, count: int, targets: dict[str, tuple[str, int]]):
        context = multiprocessing.get_context("fork")
        self.pipes, self.processes = [], []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=_client_loop, args=(child, targets), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def run(self, name: str, indices: list[int]) -> dict:
        n = len(self.pipes)
        started = time.perf_counter()
        for k, pipe in enumerate(self.pipes):
            pipe.send((name, indices[k::n]))
        answers = [pipe.recv() for pipe in self.pipes]
        wall = time.perf_counter() - started
        out = {"wall": wall, "latencies": [], "statuses": [], "seqs": {}, "problems": [], "client_cpu": 0.0}
        for k, (latencies, statuses, seqs, cpu) in enumerate(answers):
            out["latencies"] += latencies
            out["statuses"] += statuses
            out["client_cpu"] += cpu
            for i, status, seq in zip(indices[k::n], statuses, seqs):
                if status in (200, 201):
                    out["seqs"][i] = seq
                elif len(out["problems"]) < 5:
                    out["problems"].append(f"request {i}: HTTP {status}: {seq}")
        return out

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()


def run_rounds(clients: Clients, total: int, first: int, round_size: int) -> dict[str, dict]:
    """Rounds of ``round_size`` requests, each sent to both servers, in alternating order."""
    names = ("ledger", "bare")
    acc = {name: {"wall": 0.0, "latencies": [], "statuses": Counter(), "seqs": {}, "problems": [],
                  "client_cpu": 0.0, "round_rates": []} for name in names}
    cpu_before = {name: server_cpu_seconds(PIDS[name]) for name in names}
    done, report_at = 0, max(round_size, total // 10)
    for r, start in enumerate(range(first, first + total, round_size)):
        indices = list(range(start, min(start + round_size, first + total)))
        for name in (names if r % 2 == 0 else names[::-1]):
            out = clients.run(name, indices)
            a = acc[name]
            a["wall"] += out["wall"]
            a["latencies"] += out["latencies"]
            a["statuses"].update(out["statuses"])
            a["seqs"].update(out["seqs"])
            a["problems"] += out["problems"][:5 - len(a["problems"])]
            a["client_cpu"] += out["client_cpu"]
            a["round_rates"].append(len(indices) / out["wall"])
        done += len(indices)
        if done % report_at < round_size or done == total:
            log(f"  {done:,}/{total:,}: " + ", ".join(f"{n} {done / acc[n]['wall']:,.0f} req/s" for n in names)
                + f"; load {os.getloadavg()[0]:.2f}")
    for name in names:
        after = server_cpu_seconds(PIDS[name])
        acc[name]["server_cpu"] = (after - cpu_before[name]) if after is not None and cpu_before[name] is not None \
            else None
    return acc


def summarise(a: dict, total: int) -> dict:
    ms_cpu = (lambda s: None if s is None else s / total * 1000)
    return {
        "requests": total,
        "seconds": a["wall"],
        "rate": total / a["wall"],
        "latency": latency_summary(a["latencies"]),
        "round_rate_median": statistics.median(a["round_rates"]),
        "statuses": {str(k): v for k, v in sorted(a["statuses"].items())},
        "server_cpu_ms_per_request": ms_cpu(a["server_cpu"]),
        "client_cpu_ms_per_request": a["client_cpu"] / total * 1000,
    }


# -- checks -------------------------------------------------------------------------------------

def checkpoint_size(server: LedgerServer) -> int:
    return int(server.get(READY_PATH).text.splitlines()[1])


def check(server: LedgerServer, acc: dict, commands: list[dict], base: int, total: int,
          expected: Expected, rng: random.Random) -> int:
    ledger, bare = acc["ledger"], acc["bare"]
    if ledger["statuses"] != Counter({201: total}):
        raise SystemExit(f"the ledger did not append every command: {dict(ledger['statuses'])}; "
                         f"{ledger['problems']}")
    if bare["statuses"] != Counter({201: total}):
        raise SystemExit(f"the bare server did not answer 201 to every request: {dict(bare['statuses'])}; "
                         f"{bare['problems']}")
    seqs = ledger["seqs"]
    if sorted(seqs.values()) != list(range(base, base + total)):
        raise SystemExit("the ledger's answers are not the seqs after the warm-up, each once")
    size = checkpoint_size(server)
    if size != base + total:
        raise SystemExit(f"the checkpoint's size is {size}, expected {base} + {total}")
    for i in rng.sample(sorted(seqs), min(50, total)):
        item = server.get(f"/v1/log/entries/{seqs[i]}").json()
        if item["entry"]["command"] != commands[i]:
            raise SystemExit(f"entry {seqs[i]} is not request {i}'s command")
        verify.verify_entry_signature(item["entry"])
    with server.open_store() as store:
        return expected.check(store)


# -- output -------------------------------------------------------------------------------------

def print_summary(result: dict, stream) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, width=110, highlight=False)
    led, bare, g = result["ledger"], result["bare"], result["gunicorn"]
    ok = "[green]PASS[/]" if result["ratio_ok"] else "[red]FAIL[/]"
    table = Table(title=f"HTTP append bench: M = {result['requests']:,}, C = {result['clients']}, "
                        f"rounds of {result['round']:,}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target / note")
    m = result["machine"]
    table.add_row("machine", f"{m['cores']} cores", f"{m['python']}; ledger code {m['ledger_revision']}")
    load = result["load_average"]
    table.add_row("load average (1 min)", f"{load['before'][0]:.2f} → {load['after'][0]:.2f}",
                  "before → after the timed phase (other work on the machine)")
    table.add_row("gunicorn (both servers)", f"{g['workers']} × {g['worker_class']}",
                  f"threads {g['threads']}, timeout {g['timeout']} s, preload {g['preload_app']}, access log {g['accesslog']!r}")
    for label, r in (("ledger: POST /v1/commands", led), ("bare Flask JSON endpoint", bare)):
        lat = r["latency"]
        table.add_row(label, f"{r['rate']:,.0f} req/s",
                      f"latency p50 {lat['median_ms']:.1f}, p90 {lat['p90_ms']:.1f}, "
                      f"p99 {lat['p99_ms']:.1f}, max {lat['max_ms']:.1f} ms")
        cpu = r["server_cpu_ms_per_request"]
        table.add_row("  server CPU per request", "?" if cpu is None else f"{cpu:.2f} ms",
                      f"gunicorn master + workers; clients {r['client_cpu_ms_per_request']:.2f} ms")
    table.add_row("ledger / bare", f"{result['ratio']:.1%}", f"≥ {RATIO_TARGET:.0%}  {ok}")
    rr = result["round_ratios"]
    table.add_row("  per round", f"{rr['median']:.1%}", f"median of {rr['rounds']} paired rounds; "
                  f"min {rr['min']:.1%}, max {rr['max']:.1%}")
    if result.get("cpu_ratio") is not None:
        table.add_row("  by server CPU", f"{result['cpu_ratio']:.1%}", "bare / ledger CPU per request")
    answers = lambda r: ", ".join(f"{n:,} × {s}" for s, n in r["statuses"].items())  # noqa: E731
    table.add_row("answers", f"ledger {answers(led)}; bare {answers(bare)}",
                  f"log {result['log_size_before']:,} → {result['log_size_after']:,} entries")
    table.add_row("balances checked", f"{result['balances_checked']:,}", "against totals computed here")
    console.print(table)
    console.print(f"overall: {ok}")


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="M, measured requests per server (default 5,000)")
    parser.add_argument("--clients", type=int, default=4, help="C, concurrent client processes (default 4)")
    parser.add_argument("--round", type=int, default=250, help="requests per round and server (default 250)")
    parser.add_argument("--warmup", type=int, default=40, help="warm-up requests per server, not counted (default 40)")
    parser.add_argument("--workers", type=int, default=defaults.server_workers,
                        help=f"gunicorn workers of both servers (default {defaults.server_workers}, the setting's)")
    parser.add_argument("--seed", type=int, default=20261123, help="for the sampled checks")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (home, logs)")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of the table")
    parser.add_argument("--bare-server", metavar="BIND", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        serve_bare(args.bare_server, args.workers)
        return 0
    if args.requests < 1 or args.clients < 1 or args.round < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--requests, --clients, --round and --workers must be positive, --warmup not negative")

    revision = ledger_revision()
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="ecoledger-http-bench-"))
    home = workdir / "home"
    database_url = f"sqlite:///{workdir / 'ledger.db'}"
    servers: dict[str, LedgerServer] = {}
    clients = None
    try:
        log(f"starting the ledger (ecoledger serve, {args.workers} workers) and the bare server with the same "
            "gunicorn settings")
        servers["ledger"] = LedgerServer.start(home=home, database_url=database_url, origin=ORIGIN,
                                               workers=args.workers)
        servers["bare"] = start_bare(workdir, ledger_env(home=home, database_url=database_url, origin=ORIGIN),
                                     args.workers)
        settings = load_settings(environ=servers["ledger"].env)
        options = {k: v for k, v in gunicorn_options(settings).items() if k not in ("logconfig_dict", "bind")}
        options["workers"] = args.workers
        options["threads"] = GunicornConfig().threads  # not set by api/serve.py: gunicorn's default
        for name, server in servers.items():
            PIDS[name] = server.process.pid

        log("setup: principals (ecoledger principal add), accounts, deposits, assets (api.client)")
        expected = Expected()
        principal_clients, tokens = set_up_ledger(servers["ledger"], expected)
        total, warm = args.requests, args.warmup
        log(f"signing {warm + total:,} single-command requests")
        # warm-up requests are 0 … warm-1, the measured ones warm … warm+total-1
        requests, commands = prepare_requests(principal_clients, tokens, warm + total, 0, expected)
        _REQUESTS[:] = requests

        targets = {name: (HOST, int(server.url.rsplit(":", 1)[1])) for name, server in servers.items()}
        clients = Clients(args.clients, targets)
        if warm:
            log(f"warm-up: {warm} requests to each server")
            for name in ("ledger", "bare"):
                out = clients.run(name, list(range(warm)))
                if any(s != 201 for s in out["statuses"]):
                    raise SystemExit(f"warm-up on the {name} server failed: {out['problems']}")
        base = checkpoint_size(servers["ledger"])

        log(f"{total:,} requests to each server from {args.clients} clients, rounds of {args.round}, interleaved")
        load_before = os.getloadavg()
        acc = run_rounds(clients, total, warm, args.round)
        load_after = os.getloadavg()
        clients.close()
        clients = None

        log("checking: answers, seqs, the checkpoint's size, sampled entries, every balance")
        balances_checked = check(servers["ledger"], acc, commands, base, total, expected, rng)
        ledger, bare = summarise(acc["ledger"], total), summarise(acc["bare"], total)
        round_ratios = [a / b for a, b in zip(acc["ledger"]["round_rates"], acc["bare"]["round_rates"])]
        ratio = ledger["rate"] / bare["rate"]
        cpu_l, cpu_b = ledger["server_cpu_ms_per_request"], bare["server_cpu_ms_per_request"]
        result = {
            "requests": total,
            "clients": args.clients,
            "round": args.round,
            "warmup": warm,
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(), "ledger_revision": revision},
            "gunicorn": options,
            "ledger": ledger,
            "bare": bare,
            "ratio": ratio,
            "ratio_ok": ratio >= RATIO_TARGET,
            "round_ratios": {"rounds": len(round_ratios), "median": statistics.median(round_ratios),
                             "min": min(round_ratios), "max": max(round_ratios)},
            "cpu_ratio": cpu_b / cpu_l if cpu_l and cpu_b else None,
            "log_size_before": base,
            "log_size_after": base + total,
            "balances_checked": balances_checked,
            "load_average": {"before": load_before, "after": load_after},
        }
        emit(result, args.json, print_summary)
        return 0
    finally:
        if clients is not None:
            clients.close()
        for server in servers.values():
            server.stop()
        discard(workdir, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
