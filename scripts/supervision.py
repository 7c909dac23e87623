"""Process supervision shared by `make run` (scripts/run_embedded.py) and `make cluster` (scripts/run_cluster.py).

Children are started in a process group of their own (a terminal's Ctrl-C reaches only the supervisor, which stops
them in order) and get SIGTERM when the supervisor dies, even by SIGKILL (PR_SET_PDEATHSIG), so none is orphaned.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 20
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies; own process group."""
    os.setpgrp()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Supervisor:
    """Named children, stopped in reverse order of their first start (a restarted child keeps its place)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def say(self, message: str) -> None:
        print(f"{self.tag}: {message}", flush=True)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str], pass_fds: Iterable[int] = ()
    ) -> subprocess.Popen[bytes]:
        """Start a child without registering it (e.g. a replacement not yet ready)."""
        process = subprocess.Popen(  # noqa: PLW1509
            argv, cwd=ROOT, env=env, preexec_fn=_die_with_parent, pass_fds=tuple(pass_fds)
        )
        self.say(f"{name} started (pid {process.pid})")
        return process

    def start(
        self, name: str, argv: list[str], env: dict[str, str], pass_fds: Iterable[int] = ()
    ) -> subprocess.Popen[bytes]:
        process = self.spawn(name, argv, env, pass_fds)
        self.children[name] = process
        return process

    def terminate(self, named: list[tuple[str, subprocess.Popen[bytes]]], timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM all of ``named`` at once, then wait for each (SIGKILL after ``timeout_s``)."""
        for name, process in named:
            if process.poll() is None:
                self.say(f"{name} stopping")
                process.terminate()
        deadline = time.monotonic() + timeout_s
        for name, process in named:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop within {timeout_s:.0f} s: killed")
                process.kill()
                process.wait()
            self.say(f"{name} stopped")

    def stop(self, *_: object, groups: list[list[str]] | None = None) -> None:
        """Stop every child: by ``groups`` (each group at once, in order), else one by one in reverse order."""
        if self.stopping:
            return
        self.stopping = True
        order = groups if groups is not None else [[name] for name in reversed(self.children)]
        seen = {name for group in order for name in group}
        order += [[name] for name in reversed(self.children) if name not in seen]
        for group in order:
            self.terminate([(name, self.children[name]) for name in group if name in self.children])

    def watch(self) -> int:
        """Until a signal or a child's own exit (then the others are stopped); returns the exit status."""
        while not self.stopping:
            for name, process in list(self.children.items()):
                if process.poll() is not None:
                    self.say(f"{name} exited with {process.returncode}: stopping the others")
                    self.stop()
                    return 1
            time.sleep(0.5)
        return 0
