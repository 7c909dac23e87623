"""Servers under test, started as users run them: daphne subprocesses (CSMS or the echo baseline) and the
``ocpp``-package baseline, plus a throw-away PostgreSQL database per run."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "var" / "bench-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    """Resident set size of a process in kB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    measured_pid: int = 0  # the daphne process whose RSS and CPU are the figures (0: ``process`` itself)
    supervised: bool = False  # ``process`` is scripts/run_embedded.py; its log names daphne's pid

    @property
    def pid(self) -> int:
        return self.measured_pid or self.process.pid

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log_file.close()


def _wait_ready(server: Server, http: bool, timeout_s: float = 180) -> None:
    try:
        _wait_until_ready(server, http, timeout_s)
    except BaseException:
        server.stop()  # interrupted or failed: never leave the server (and an embedded one's children) behind
        raise


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``port``: a free port can be taken by another
    program between free_port() and the server's bind, and then that program would answer the health check."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    return False


def _embedded_daphne_pid(server: Server) -> int:
    with contextlib.suppress(OSError):
        for line in server.log_path.read_text(errors="replace").splitlines():
            if line.startswith("embedded: daphne started (pid "):
                return int(line.rsplit(" ", 1)[1].rstrip(")"))
    return 0


def _wait_until_ready(server: Server, http: bool, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log_path.read_text(errors='replace')[-3000:]}")
        if server.supervised and not server.measured_pid:
            server.measured_pid = _embedded_daphne_pid(server)
        try:
            if (server.measured_pid or not server.supervised) and listens_on(server.pid, server.port):
                if not http:
                    return
                with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not start within {timeout_s:g} s")


def start(
    name: str, env: dict[str, str], *, app: str = "csms.asgi:application", profile_to: Path | None = None
) -> Server:
    """A daphne process with the same flags as ``make run``; ``profile_to`` wraps it in cProfile."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "--websocket_timeout", "-1",
            "--websocket_connect_timeout", "30", app]  # fmt: skip
    if profile_to is not None:
        args = ["-m", "bench.profiled", str(profile_to), *args[2:]]
    log_path = LOG_DIR / f"{name}-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, port, process, log_path, log)
    _wait_ready(server, http=True)
    return server


DAPHNE_ARGS = ["--websocket_timeout", "-1", "--websocket_connect_timeout", "30", "csms.asgi:application"]


def start_embedded(name: str, env: dict[str, str]) -> Server:
    """The embedded default exactly as ``make run`` starts it without DATABASE_URL/REDIS_URL:
    scripts/run_embedded.py supervising a private Redis (the channel layer and Celery's broker), a Celery worker,
    beat, the FTP server and daphne on SQLite under ``CSMS_VAR_DIR``. The figures are daphne's."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = LOG_DIR / f"{name}-{port}.log"
    log = log_path.open("wb")
    env = env | {"CSMS_FTP_PORT": str(free_port()), "CSMS_FTP_PASSIVE_PORTS": ""}
    argv = [sys.executable, "scripts/run_embedded.py", "--host", "127.0.0.1", "--port", str(port), "--", *DAPHNE_ARGS]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, port, process, log_path, log, supervised=True)
    _wait_ready(server, http=True, timeout_s=180)  # the daphne pid comes from the supervisor's log
    return server


def start_ocpp_baseline(env: dict[str, str]) -> Server:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = LOG_DIR / f"ocpp-lib-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ocpp_server", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server("ocpp-lib", port, process, log_path, log)
    _wait_ready(server, http=False)
    return server


class PostgresDatabase:
    """A fresh database on the server of ``admin_url``, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = "csms_bench_" + uuid.uuid4().hex[:10]
        base, _, _ = admin_url.rpartition("/")
        self.url = f"{base}/{self.name}"

    def __enter__(self) -> PostgresDatabase:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )


def http_status(url: str, timeout_s: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("DATABASE_URL", "REDIS_URL", "CSMS_TEST_DB_NAME", "CSMS_VAR_DIR"):
        env.pop(key, None)
    return env | {"DJANGO_SETTINGS_MODULE": "csms.settings", "PYTHONUNBUFFERED": "1"}
