"""The production topology for the fault tests, as operators run it: ``scripts/run_cluster.py`` (``make cluster``)
with two daphne processes behind one station port, a Celery worker and beat, on the private PostgreSQL and Redis
(``tests/ops/services.py``). Its supervisor restarts a dead child after ~1 s; its state file names the pids."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    logs: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def state(self) -> dict[str, Any]:
        path = Path(self.env["CSMS_VAR_DIR"]) / "cluster" / "state.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def web_pids(self) -> list[int]:
        return [int(pid) for pid in self.state().get("web") or [] if pid]

    def kill_web(self, index: int = 0) -> int:
        pid = self.web_pids()[index]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_worker(self) -> int:
        """SIGKILL the worker node: its main process and its pool children (the supervisor gives each child a
        process group of its own). The supervisor starts a new one after ~1 s."""
        pid = int(self.state()["worker"])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        return pid

    def worker_pid(self) -> int | None:
        pid = self.state().get("worker")
        return int(pid) if pid else None

    def ready(self) -> bool:
        """The supervisor said every daphne process answers its /readyz."""
        with contextlib.suppress(OSError):
            return b"cluster: ready:" in (self.logs / "cluster.log").read_bytes()
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_cluster(*, port: int, env: dict[str, str], logs: Path) -> Cluster:
    """``scripts/run_cluster.py`` (migrates, makes the admin user, starts the children); its output in ``logs``."""
    logs.mkdir(parents=True, exist_ok=True)
    log = (logs / "cluster.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_cluster.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--web-processes",
            "2",
            "--worker-concurrency",
            "2",
            "--no-ftp",
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Cluster(port=port, env=env, process=process, logs=logs)
