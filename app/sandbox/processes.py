"""Child processes of the sandbox (redis-server, function hosts) that never outlive it.

Two guards against orphans: every child gets a parent-death signal (Linux
PR_SET_PDEATHSIG, through util-linux `setpriv --pdeathsig KILL`), so even a
SIGKILLed sandbox takes its children along; and the supervisor stops each
child it started, politely (SIGTERM, then SIGKILL), when a resource is deleted
or the sandbox stops.

The kernel sends the parent-death signal when the *thread* that forked the
child exits, so all children are forked by one long-lived spawner thread that
lives exactly as long as the supervisor.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger("mlcache.sandbox.processes")

_SETPRIV = shutil.which("setpriv")


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (reads /proc, no psutil)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X")


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (e.g. a state directory path)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        mentions = any(text in part for part in pid_cmdline(pid))
        if pid != os.getpid() and mentions and pid_alive(pid):
            found.append(pid)
    return found


def terminate_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL a process that is not our child (e.g. a stale one)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _set_pdeathsig() -> None:
    """In the child, before exec: die with the parent (fallback when setpriv is missing)."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class ProcessSupervisor:
    """Starts and stops the sandbox's children; `close()` stops every one."""

    def __init__(self) -> None:
        self._spawner = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sandbox-spawner"
        )
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._closed = False

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stdout: IO[bytes] | int | None = subprocess.DEVNULL,
        stderr: IO[bytes] | int | None = subprocess.DEVNULL,
    ) -> subprocess.Popen[bytes]:
        """Start `argv` with a parent-death signal, in its own process group."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox is stopping; no new processes")
        full = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)
        preexec = None if _SETPRIV else _set_pdeathsig

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                full,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
                preexec_fn=preexec,
            )

        proc = self._spawner.submit(start).result()
        with self._lock:
            self._children[proc.pid] = proc
        log.debug("started pid %d: %s", proc.pid, argv[0])
        return proc

    def stop(self, proc: subprocess.Popen[bytes] | int, timeout: float = 5.0) -> None:
        """Stop one child (or a pid the supervisor started) and reap it."""
        pid = proc if isinstance(proc, int) else proc.pid
        with self._lock:
            child = self._children.pop(pid, None)
        if child is None:
            if isinstance(proc, int):
                terminate_pid(pid, timeout)
                return
            child = proc
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                child.terminate()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    child.kill()
                child.wait()
        log.debug("stopped pid %d", pid)

    def children(self) -> list[int]:
        with self._lock:
            return [pid for pid, child in self._children.items() if child.poll() is None]

    def close(self) -> None:
        """Stop every child, then the spawner thread."""
        with self._lock:
            self._closed = True
            children = list(self._children.values())
        for child in children:
            self.stop(child)
        self._spawner.shutdown(wait=True)
