"""`make run` on the embedded default: a private Redis, a Celery worker, Celery beat and daphne, supervised together.

The database stays SQLite under var/ (no DATABASE_URL); the private Redis (under var/redis/, on 127.0.0.1 with a
password made for this start) is the channel layer and the Celery broker, so the jobs run exactly as in production:
a worker runs them, beat sends the periodic ones (stale-station sweep, webhook retries, report expiry, retention).
Ctrl-C or SIGTERM stops daphne, beat and the worker, then Redis; if any of them exits on its own, the others are
stopped too and this exits non-zero. Children die with this process even when it is killed (PR_SET_PDEATHSIG).

Usage: python scripts/run_embedded.py --host 127.0.0.1 --port 8000 -- <daphne arguments>
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from supervision import BIN, ROOT, Supervisor, free_port


def say(message: str) -> None:
    print(f"embedded: {message}", flush=True)


def redis_server_path() -> str:
    """scripts/ensure-redis-server.sh: found, installed from Debian, or one clear line and exit 1."""
    done = subprocess.run([str(ROOT / "scripts" / "ensure-redis-server.sh")], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(1)  # the script said why, in one line
    return done.stdout.strip()


def wait_redis(port: int, password: str, process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    auth = f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n".encode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"embedded: redis-server exited with {process.returncode} (see var/redis/redis.log)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(auth)
                answer = b""
                while b"\r\n" not in answer.partition(b"\r\n")[2]:  # the AUTH answer, then PING's
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    answer += chunk
                if b"+PONG" in answer:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("embedded: redis-server did not answer within 15 s (see var/redis/redis.log)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="8000")
    parser.add_argument("daphne_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    daphne_args = [a for a in args.daphne_args if a != "--"]

    server = redis_server_path()
    var = Path(os.environ.get("CSMS_VAR_DIR", ROOT / "var"))
    redis_dir = var / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("CSMS_EMBEDDED_REDIS_PORT") or free_port())
    password = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"REDIS_URL": f"redis://:{password}@127.0.0.1:{port}/0", "PYTHONUNBUFFERED": "1"}

    supervisor = Supervisor("embedded")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        supervisor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        return run_all(supervisor, server, port, password, redis_dir, env, args.host, args.port, daphne_args)
    finally:
        supervisor.stop()


def run_all(
    supervisor: Supervisor,
    server: str,
    port: int,
    password: str,
    redis_dir: Path,
    env: dict[str, str],
    host: str,
    http_port: str,
    daphne_args: list[str],
) -> int:
    redis = supervisor.start(
        "redis",
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--dir",
            str(redis_dir),
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--logfile",
            str(redis_dir / "redis.log"),
            "--daemonize",
            "no",
        ],  # fmt: skip
        env,
    )
    wait_redis(port, password, redis)
    say(f"private Redis on 127.0.0.1:{port} (data in {redis_dir})")
    celery = str(BIN / "celery")
    supervisor.start(
        "worker",
        [
            celery,
            "-A",
            "csms",
            "worker",
            "-l",
            "INFO",
            "--concurrency",
            os.environ.get("CSMS_EMBEDDED_WORKERS", "2"),
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"embedded-{port}@%h",
        ],  # fmt: skip
        env,
    )
    supervisor.start("beat", [celery, "-A", "csms", "beat", "-l", "INFO"], env)
    # The stations' FTP uploads (firmware/ftp.py), beside the HTTP ones daphne serves.
    supervisor.start("ftp", [sys.executable, str(ROOT / "manage.py"), "fileserver_ftp"], env)
    supervisor.start("daphne", [str(BIN / "daphne"), "-b", host, "-p", http_port, *daphne_args], env)
    return supervisor.watch()


if __name__ == "__main__":
    sys.exit(main())
