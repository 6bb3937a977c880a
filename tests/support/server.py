"""The real service in a subprocess, for end-to-end tests: ``ecoledger serve`` under gunicorn.

Typical use in a fixture::

    with LedgerServer.start(home=tmp_path / "home", database_url=database_url) as server:
        note = server.get("/v1/log/checkpoint").content
        run_cli(server.env, "log-key", "rotate")

The server runs in a session of its own; stopping it sends SIGTERM to the gunicorn master,
waits, and kills the whole process group if it does not go. Its stdout and stderr go to files
next to its home directory; :meth:`LedgerServer.output` returns them for failure reports.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

DEFAULT_ORIGIN = "ecoledger.test/log"
READY_PATH = "/v1/log/checkpoint"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0


class ServerError(RuntimeError):
    """The server did not start (or a CLI command failed); the message carries its output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def ecoledger_command() -> list[str]:
    """The ``ecoledger`` console script of the running interpreter's environment."""
    script = Path(sys.executable).parent / "ecoledger"
    if script.exists():
        return [str(script)]
    found = shutil.which("ecoledger")
    if found is None:
        raise ServerError("the ecoledger console script is not installed (pip install -e .)")
    return [found]


def ledger_env(*, home: Path, database_url: str, origin: str = DEFAULT_ORIGIN,
               extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the service and the CLI on one ledger.

    Inherited ``ECOLEDGER_*`` variables (a settings file, the test database URL…) are dropped so
    the subprocess sees only this ledger's settings.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOLEDGER_")}
    env.update({
        "ECOLEDGER_HOME": str(home),
        "ECOLEDGER_ORIGIN": origin,
        "ECOLEDGER_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def run_cli(env: Mapping[str, str], *args: str, timeout: float = CLI_TIMEOUT) -> str:
    """Run ``ecoledger <args>`` with ``env``; return its stdout, raise ServerError if it fails."""
    command = [*ecoledger_command(), *args]
    result = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise ServerError(f"{' '.join(command)} exited with status {result.returncode}\n"
                          f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result.stdout


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text if len(text) <= limit else f"[… {len(text) - limit} characters omitted]\n{text[-limit:]}"


class LedgerServer:
    """A running ``ecoledger serve``. Create with :meth:`start`; use as a context manager."""

    def __init__(self, *, process: subprocess.Popen, url: str, env: dict[str, str],
                 stdout_path: Path, stderr_path: Path, runtime_dir: Path | None = None):
        self.process = process
        self.url = url
        self.env = env
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.runtime_dir = runtime_dir
        self.session = requests.Session()

    @classmethod
    def start(cls, *, home: Path, database_url: str, origin: str = DEFAULT_ORIGIN, workers: int = 2,
              extra_env: Mapping[str, str] | None = None, serve_args: Sequence[str] = (),
              timeout: float = START_TIMEOUT) -> "LedgerServer":
        """Start the server on a free port and wait until it answers ``GET /v1/log/checkpoint``.

        ``home`` is created if missing; the server's output files go next to it
        (``<home>.stdout.log``, ``<home>.stderr.log``).
        """
        home = Path(home)
        home.parent.mkdir(parents=True, exist_ok=True)
        env = ledger_env(home=home, database_url=database_url, origin=origin, extra=extra_env)
        # gunicorn (>= 25) opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl, else at
        # ~/.gunicorn/gunicorn.ctl, shared by every server of the user: give each its own. A
        # short path, since a Unix socket path is limited to about 100 bytes.
        runtime_dir = tempfile.mkdtemp(prefix="ecoledger-run-")
        if "XDG_RUNTIME_DIR" not in (extra_env or {}):
            env["XDG_RUNTIME_DIR"] = runtime_dir
        port = free_port()
        stdout_path = home.with_name(home.name + ".stdout.log")
        stderr_path = home.with_name(home.name + ".stderr.log")
        command = [*ecoledger_command(), "serve", "--bind", f"127.0.0.1:{port}",
                   "--workers", str(workers), *serve_args]
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=stderr, start_new_session=True)
        server = cls(process=process, url=f"http://127.0.0.1:{port}", env=env,
                     stdout_path=stdout_path, stderr_path=stderr_path, runtime_dir=Path(runtime_dir))
        try:
            server.wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll the readiness path until it answers 200; fail early if the server exits."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while True:
            status = self.process.poll()
            if status is not None:
                raise ServerError(f"the server exited with status {status} before answering\n{self.output()}")
            try:
                response = self.session.get(self.url + READY_PATH, timeout=2)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:500]}"
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ServerError(f"the server did not answer {READY_PATH} within {timeout:.0f} s "
                                  f"(last: {last})\n{self.output()}")
            time.sleep(0.1)

    def get(self, path: str, *, expect: int | None = 200, **kwargs) -> requests.Response:
        """GET ``path``; unless ``expect`` is None, fail with the body if the status differs."""
        kwargs.setdefault("timeout", 10)
        response = self.session.get(self.url + path, **kwargs)
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"GET {path}: expected HTTP {expect}, got {response.status_code}: "
                                 f"{response.text[:2000]}")
        return response

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        """Run an ``ecoledger`` command on the same ledger (same home, database and origin)."""
        return run_cli(self.env, *args, timeout=timeout)

    @contextmanager
    def open_store(self) -> Iterator["LogStore"]:  # noqa: F821 (imported lazily)
        """The same ledger's LogStore in this process, e.g. to append entries faster than the CLI.

        It reads the settings from the server's environment, as the CLI would.
        """
        from api.settings import load_settings
        from api.storage import open_store

        store = open_store(load_settings(environ=self.env))
        try:
            yield store
        finally:
            store.engine.dispose()

    def output(self) -> str:
        """The server's stdout and stderr so far (their tails if long)."""
        return (f"--- server command: pid {self.process.pid}, {self.url}\n"
                f"--- server stdout ({self.stdout_path}):\n{_tail(self.stdout_path)}\n"
                f"--- server stderr ({self.stderr_path}):\n{_tail(self.stderr_path)}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the gunicorn master and wait; if it does not go, SIGKILL its process group.

        Returns the exit status (None if even SIGKILL did not end it in time). Idempotent.
        """
        self.session.close()
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    # The master, not yet reaped, leads a session of its own: its process
                    # group is itself and its workers, nothing else.
                    try:
                        os.killpg(self.process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        finally:
            if self.runtime_dir is not None:
                shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self) -> "LedgerServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
