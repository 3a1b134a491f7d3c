"""The livekit-server that bench scenarios needing a room run against, and the room-*
scenarios' publisher process (bench/room_publisher.py).

``RTC_TRIO_BENCH_URL`` / ``RTC_TRIO_BENCH_API_KEY`` / ``RTC_TRIO_BENCH_API_SECRET`` (or the
tests' ``RTC_TRIO_TEST_*``) name a running server; otherwise, as root, :func:`bench_server` starts the one the tests use, with the
tests' own code (tests/run.py: binary, network namespace, config), and every side process that
talks to it runs inside that namespace. No RTC library is imported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.run import (  # noqa: E402  (the tests' server code, not a copy)
    PROXY_VARS, SetupError, _die_with_parent, ensure_server_binary, ip_binary, livekit_server,
    network_namespace,
)

URL_VAR, KEY_VAR, SECRET_VAR = "RTC_TRIO_BENCH_URL", "RTC_TRIO_BENCH_API_KEY", "RTC_TRIO_BENCH_API_SECRET"
NO_SERVER = (f"no LiveKit server: run the bench as root (it starts one in a network namespace) "
             f"or set {URL_VAR}, {KEY_VAR} and {SECRET_VAR}")
__all__ = ["NO_SERVER", "BenchServer", "Publisher", "SetupError", "bench_server", "from_env",
           "named", "publishing", "token"]
PUBLISHER = Path(__file__).resolve().parent / "room_publisher.py"


@dataclass(frozen=True)
class BenchServer:
    """A server, and how a process reaches it: a command prefix (the namespace) and an env."""

    url: str
    api_key: str
    api_secret: str
    prefix: tuple[str, ...] = ()

    def env(self) -> dict[str, str]:
        """A bench process's environment: the server named, no proxies."""
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env.update({URL_VAR: self.url, KEY_VAR: self.api_key, SECRET_VAR: self.api_secret})
        return env


TEST_VARS = ("RTC_TRIO_TEST_URL", "RTC_TRIO_TEST_API_KEY", "RTC_TRIO_TEST_API_SECRET")


def from_env() -> BenchServer | None:
    """The server the environment names, if it names one: the bench's variables, else the
    tests' (tests/run.py sets those: the bench smoke test uses the tests' server)."""
    for names in ((URL_VAR, KEY_VAR, SECRET_VAR), TEST_VARS):
        url, key, secret = (os.environ.get(v) for v in names)
        if url and key and secret:
            return BenchServer(url, key, secret)
    return None


def named() -> BenchServer:
    """The server the environment names; SetupError if none is."""
    server = from_env()
    if server is None:
        raise SetupError(NO_SERVER)
    return server


def token(identity: str, room: str) -> str:
    """A join token for ``room`` on the server the environment names."""
    from livekit import api  # the token minter only (livekit-api), no RTC library

    server = named()
    grants = api.VideoGrants(room_join=True, room=room)
    return (api.AccessToken(server.api_key, server.api_secret)
            .with_identity(identity).with_grants(grants).to_jwt())


@contextlib.contextmanager
def bench_server() -> Iterator[BenchServer | None]:
    """The server the environment names; else, as root, a fresh one in a namespace of its
    own for the duration of the block; else None."""
    named = from_env()
    if named is not None or os.geteuid() != 0:
        yield named
        return
    binary = ensure_server_binary()
    with tempfile.TemporaryDirectory(prefix="rtc_trio-bench-") as tmp, network_namespace() as ns:
        with livekit_server(ns.name, ns.server_addr, binary, Path(tmp) / "server.log") as live:
            yield BenchServer(live.url, live.api_key, live.api_secret,
                              (ip_binary(), "netns", "exec", ns.name))


@dataclass
class Publisher:
    """bench/room_publisher.py in a process of its own: started, ready, then stopped with the
    measured window, when it reports what it sent (and, in echo mode, the round trips)."""

    server: BenchServer
    argv: list[str]
    proc: subprocess.Popen[str] | None = None
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    stderr: IO[str] | None = None

    def start(self, timeout: float) -> None:
        """Start the helper and wait for its ``ready`` line; SetupError if it does not come."""
        self.stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [*self.server.prefix, sys.executable, str(PUBLISHER), *self.argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            env=self.server.env(), cwd=ROOT, preexec_fn=_die_with_parent)
        threading.Thread(target=self._read, daemon=True).start()
        line = self._line(timeout)
        if line != "ready":
            raise SetupError(f"room publisher not ready ({line!r}): {self.stderr_tail()}")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def _line(self, timeout: float) -> str | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self, window: list[float] | None, timeout: float = 20.0) -> dict[str, Any]:
        """Send the measured window, return the helper's report (``error`` on failure)."""
        assert self.proc is not None and self.proc.stdin is not None
        t0, t1 = window or (0.0, 0.0)
        try:
            self.proc.stdin.write(f"stop {t0!r} {t1!r}\n")
            self.proc.stdin.close()
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while (line := self._line(max(0.0, deadline - time.monotonic()))) is not None:
            if line.startswith("{"):
                return dict(json.loads(line))
        return {"error": f"room publisher gave no report: {self.stderr_tail()}"}

    def close(self) -> None:
        """Make sure the helper is gone."""
        if self.proc is not None:
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr is not None:
            self.stderr.close()

    def stderr_tail(self) -> list[str]:
        """The last lines the helper wrote to stderr."""
        if self.stderr is None:
            return []
        self.stderr.seek(0)
        return [ln for ln in self.stderr.read().splitlines() if ln.strip()][-8:]


@contextlib.contextmanager
def publishing(server: BenchServer, argv: list[str], ready_timeout: float) -> Iterator[Publisher]:
    """A started helper for the duration of the block."""
    pub = Publisher(server, argv)
    try:
        pub.start(ready_timeout)
        yield pub
    finally:
        pub.close()
