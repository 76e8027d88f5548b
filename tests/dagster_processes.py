"""Real Dagster processes for end-to-end tests: start, wait for, talk to (GraphQL) and always stop.

Each process runs in its own session, so stopping it kills its whole process group: the code
servers and run workers it spawned go with it, even when the test fails half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
OUTPUT_TAIL = 6000  # characters of each process's output shown when a test fails


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DagsterProcess:
    """One long-running Dagster command, its output captured in a file (never a pipe that can fill up)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def exited(self) -> bool:
        return self.popen.poll() is not None

    def output(self, tail: int = OUTPUT_TAIL) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-tail:]

    def stop(self, grace_seconds: float = 10.0) -> None:
        stop_all([self], grace_seconds)


def stop_all(processes: Sequence[DagsterProcess], grace_seconds: float = 10.0) -> None:
    """SIGTERM every process group at once, give the leaders a grace period, then SIGKILL what is left.

    Dagster's children (code servers, run workers) can outlive a leader that exited cleanly, and
    the leader's pid is its group id (start_new_session), so the SIGKILL goes to every group.
    """
    for proc in processes:
        _signal_group(proc.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in processes:
        _signal_group(proc.popen.pid, signal.SIGKILL)
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=5)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def start_process(name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path) -> DagsterProcess:
    """Start `args` from the project root in a new session, stdout and stderr into `<log_dir>/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            list(args),
            cwd=PROJECT_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return DagsterProcess(name=name, popen=popen, log=log)


def describe(processes: Sequence[DagsterProcess]) -> str:
    """Every process's state and the tail of its output, for a failure message."""
    parts = []
    for proc in processes:
        state = f"exited with {proc.popen.returncode}" if proc.exited else "running"
        parts.append(f"===== {proc.name} ({state}), {proc.log} =====\n{proc.output()}")
    return "\n".join(parts)


class ProcessDiedError(AssertionError):
    pass


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    processes: Sequence[DagsterProcess],
    interval: float = 0.5,
) -> Any:
    """Poll `condition` until it returns something truthy; fail early if a process dies, or on timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        dead = [p for p in processes if p.exited]
        if dead:
            raise ProcessDiedError(
                f"{', '.join(p.name for p in dead)} exited while waiting for {what}\n{describe(processes)}"
            )
        try:
            result = condition()
        except (OSError, urllib.error.URLError) as exc:  # not listening yet, connection reset, ...
            result, last_error = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error!r})\n"
                + describe(processes)
            )
        time.sleep(interval)


class GraphQLError(AssertionError):
    pass


@dataclass(frozen=True)
class Webserver:
    """The HTTP face of a running dagster-webserver."""

    base_url: str

    def server_info(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/server_info", timeout=5) as response:
            return dict(json.load(response))

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        """POST a GraphQL document, as the UI does; GraphQL-level errors raise, data is returned."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/graphql",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:
            raise GraphQLError(f"HTTP {exc.code} from /graphql: {exc.read().decode(errors='replace')}") from exc
        if payload.get("errors"):
            raise GraphQLError(f"GraphQL errors: {json.dumps(payload['errors'], indent=2)}")
        return dict(payload["data"])
