"""`make cluster`: the production topology on one machine, without Docker, supervised together.

One listening socket on HOST:PORT, opened here and inherited by WEB_PROCESSES daphne processes (daphne's
`--fd N`): the kernel hands each new connection to whichever process accepts it first, so there is no
balancer process to run, and when a daphne dies its share of new connections goes to the others at once (nothing
queued on the socket is lost: the socket outlives every daphne). Beside them: a Celery worker, Celery beat and the
stations' FTP file server, on the PostgreSQL and Redis of DATABASE_URL and REDIS_URL (both required). The channel
layer is Redis, so a command or a live update reaches a station whichever process holds its socket.

- Start: `manage.py migrate` and `ensure_admin` first (`--no-migrate` skips them), then worker, beat, ftp, web.
- Each daphne also listens on a private admin port on 127.0.0.1 (its own /healthz and /readyz, since the shared
  port cannot address one process): that is its readiness signal.
- A child that exits on its own is restarted after RESTART_DELAY_S (logged); the others keep running.
- SIGHUP: rolling restart (a new release): the daphne processes one at a time, each replacement ready on its admin
  port before the process it replaces is stopped (its stations reconnect to the others); then the worker (the new
  one first, the old one's warm shutdown finishes its tasks), beat and ftp (stopped, then started: never two beats).
- SIGTERM / Ctrl-C: every child stopped (web first, then ftp, beat, worker), exit 0.
- State, rewritten on every change: $CSMS_VAR_DIR/cluster/state.json (default var/cluster/state.json)
  {"supervisor": pid, "web": [pids], "worker": pid, "beat": pid, "port": P, "ftp": pid, "web_admin_ports": [ports]}.

Usage: python scripts/run_cluster.py [--host H] [--port P] [--web-processes N] [--no-worker] [--no-beat]
       [--no-ftp] [--no-migrate] [-- <daphne arguments>]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from supervision import BIN, ROOT, Supervisor, free_port

RESTART_DELAY_S = 1.0
# How long a new daphne may take to answer its /readyz (a busy machine: the fault tests set more).
READY_TIMEOUT_S = float(os.environ.get("CSMS_CLUSTER_READY_TIMEOUT_S") or 90)
# The same daphne flags as `make run`, the image and the tests (tests/test_deployment.py checks them).
DAPHNE_ARGS = ["--websocket_timeout", "-1", "--websocket_connect_timeout", "30", "csms.asgi:application"]


def state_path() -> Path:
    return Path(os.environ.get("CSMS_VAR_DIR", ROOT / "var")) / "cluster" / "state.json"


class Cluster:
    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        self.args = args
        self.env = env
        self.sup = Supervisor("cluster")
        self.web_slots = [f"web-{i}" for i in range(args.web_processes)]
        self.admin_ports: dict[str, int] = {}
        self.generation = 0  # distinct Celery node names across restarts
        self.rolling_requested = False
        self.restart_at: dict[str, float] = {}
        # IPv4 only: daphne's fd endpoint adopts AF_INET sockets (its domain= option takes no other family).
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((args.host, args.port))
        self.listener.listen(1024)

    # --- children -------------------------------------------------------------------------------------------------
    def web_argv(self, admin_port: int) -> list[str]:
        fd = self.listener.fileno()
        return [
            str(BIN / "daphne"),
            "--fd",
            str(fd),
            "-e",
            f"tcp:port={admin_port}:interface=127.0.0.1",
            *self.args.daphne_args,
        ]

    def spawn_web(self, slot: str) -> tuple[subprocess.Popen[bytes], int]:
        admin_port = free_port()
        process = self.sup.spawn(slot, self.web_argv(admin_port), self.env, pass_fds=[self.listener.fileno()])
        return process, admin_port

    def start_web(self, slot: str) -> None:
        process, admin_port = self.spawn_web(slot)
        self.sup.children[slot] = process
        self.admin_ports[slot] = admin_port

    def celery_argv(self, name: str) -> list[str]:
        celery = str(BIN / "celery")
        if name == "beat":
            return [celery, "-A", "csms", "beat", "-l", "INFO"]
        self.generation += 1
        argv = [celery, "-A", "csms", "worker", "-l", "INFO", "-n", f"cluster-{os.getpid()}-{self.generation}@%h"]
        if self.args.worker_concurrency:
            argv += ["--concurrency", str(self.args.worker_concurrency)]
        return argv

    def argv(self, name: str) -> list[str]:
        if name == "ftp":
            return [sys.executable, str(ROOT / "manage.py"), "fileserver_ftp"]
        return self.celery_argv(name)

    def others(self) -> list[str]:
        names = []
        if not self.args.no_worker:
            names.append("worker")
        if not self.args.no_beat:
            names.append("beat")
        if not self.args.no_ftp:
            names.append("ftp")
        return names

    def start_all(self) -> None:
        for name in self.others():
            self.sup.start(name, self.argv(name), self.env)
        for slot in self.web_slots:
            self.start_web(slot)
        self.write_state()
        for slot in self.web_slots:
            if not self.wait_ready(slot, self.sup.children[slot], self.admin_ports[slot]):
                raise SystemExit(f"cluster: {slot} did not become ready within {READY_TIMEOUT_S} s")
        self.sup.say(f"ready: {len(self.web_slots)} daphne processes on http://{self.args.host}:{self.args.port}/")

    def pid(self, name: str) -> int | None:
        process = self.sup.children.get(name)
        return process.pid if process else None

    def write_state(self) -> None:
        path = state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "supervisor": os.getpid(),
            "web": [self.pid(slot) for slot in self.web_slots],
            "worker": self.pid("worker"),
            "beat": self.pid("beat"),
            "ftp": self.pid("ftp"),
            "port": self.args.port,
            "web_admin_ports": [self.admin_ports.get(slot) for slot in self.web_slots],
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)  # readers never see half a file

    def wait_ready(self, name: str, process: subprocess.Popen[bytes], admin_port: int) -> bool:
        """Its /readyz (database and channel layer) on its own admin port answers 200."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and not self.sup.stopping:
            if process.poll() is not None:
                self.sup.say(f"{name} (pid {process.pid}) exited with {process.returncode} before it was ready")
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=3) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def metrics_forget(self, pid: int) -> None:
        """A dead process's live gauges leave the /metrics sums (prometheus multiprocess mode)."""
        if self.env.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.env["PROMETHEUS_MULTIPROC_DIR"])

    # --- the loop -------------------------------------------------------------------------------------------------
    def restart_dead(self) -> None:
        now = time.monotonic()
        for name, process in list(self.sup.children.items()):
            if process.poll() is None or self.sup.stopping:
                continue
            if name not in self.restart_at:
                self.sup.say(
                    f"{name} (pid {process.pid}) exited with {process.returncode}: restart in {RESTART_DELAY_S:.0f} s"
                )
                self.metrics_forget(process.pid)
                self.restart_at[name] = now + RESTART_DELAY_S
            elif now >= self.restart_at[name]:
                del self.restart_at[name]
                if name in self.web_slots:
                    self.start_web(name)
                else:
                    self.sup.start(name, self.argv(name), self.env)
                self.write_state()

    def rolling_restart(self) -> None:
        self.sup.say("rolling restart: web processes one at a time, then worker, beat, ftp")
        for slot in self.web_slots:
            if self.sup.stopping:
                return
            old = self.sup.children[slot]
            new, admin_port = self.spawn_web(slot)
            if not self.wait_ready(slot, new, admin_port):
                self.sup.say(f"rolling restart stopped: the new {slot} (pid {new.pid}) is not ready; old ones kept")
                self.sup.terminate([(f"{slot} (new, pid {new.pid})", new)])
                return
            self.sup.terminate([(f"{slot} (old, pid {old.pid})", old)])
            self.metrics_forget(old.pid)
            self.sup.children[slot] = new
            self.admin_ports[slot] = admin_port
            self.write_state()
            self.sup.say(f"{slot} replaced: pid {old.pid} -> {new.pid}")
        if "worker" in self.sup.children and not self.sup.stopping:
            old = self.sup.children["worker"]
            self.sup.children["worker"] = self.sup.spawn("worker", self.argv("worker"), self.env)
            self.sup.terminate([(f"worker (old, pid {old.pid})", old)])
        for name in ("beat", "ftp"):
            if name in self.sup.children and not self.sup.stopping:
                self.sup.terminate([(name, self.sup.children[name])])
                self.sup.children[name] = self.sup.spawn(name, self.argv(name), self.env)
        self.write_state()
        self.sup.say("rolling restart done")

    def run(self) -> int:
        self.start_all()
        while not self.sup.stopping:
            if self.rolling_requested:
                self.rolling_requested = False
                self.rolling_restart()
            self.restart_dead()
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        self.sup.stop(groups=[self.web_slots, ["ftp"], ["beat"], ["worker"]])
        self.listener.close()
        state_path().unlink(missing_ok=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--web-processes", type=int, default=int(os.environ.get("WEB_PROCESSES", "2")))
    parser.add_argument("--worker-concurrency", type=int, default=0, help="Celery's default: one per core")
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--no-beat", action="store_true")
    parser.add_argument("--no-ftp", action="store_true")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("daphne_args", nargs=argparse.REMAINDER, help="after --: daphne's arguments")
    args = parser.parse_args()
    args.daphne_args = [a for a in args.daphne_args if a != "--"] or DAPHNE_ARGS
    if args.web_processes < 1:
        parser.error("--web-processes must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        print(
            f"cluster: {' and '.join(missing)} not set: the cluster needs PostgreSQL and Redis "
            "(e.g. DATABASE_URL=postgres://user:pass@127.0.0.1:5432/csms REDIS_URL=redis://127.0.0.1:6379/0)",
            file=sys.stderr,
        )
        return 2
    env = dict(os.environ) | {"PYTHONUNBUFFERED": "1"}
    env.setdefault("CSMS_FILE_SERVER_BASE_URL", f"http://{args.host}:{args.port}")
    if "PROMETHEUS_MULTIPROC_DIR" not in env:  # several processes: /metrics sums them (emptied at each start)
        metrics_dir = state_path().parent / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    try:  # the port first: a clear error before a long migrate
        cluster = Cluster(args, env)
    except OSError as error:
        print(f"cluster: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1

    def on_stop(signum: int, frame: FrameType | None) -> None:
        cluster.sup.stopping = True  # the loop (or a wait in progress) sees it and the finally stops every child

    def on_hup(signum: int, frame: FrameType | None) -> None:
        cluster.rolling_requested = True

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    if not args.no_migrate:
        for command in (["migrate", "--noinput"], ["ensure_admin"]):
            done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *command], cwd=ROOT, env=env)
            if done.returncode != 0 or cluster.sup.stopping:
                print(f"cluster: manage.py {command[0]} failed ({done.returncode})", file=sys.stderr)
                cluster.listener.close()
                return 1
    cluster.rolling_requested = False  # nothing to roll yet
    try:
        return cluster.run()
    finally:
        cluster.sup.stopping = False  # stop() runs once, now
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
