"""The livekit-server that bench scenarios needing a room run against.

``RTC_TRIO_BENCH_URL`` / ``RTC_TRIO_BENCH_API_KEY`` / ``RTC_TRIO_BENCH_API_SECRET`` (or the
tests' ``RTC_TRIO_TEST_*``) name a running server; otherwise, as root, :func:`bench_server` starts the one the tests use, with the
tests' own code (tests/run.py: binary, network namespace, config), and every side process that
talks to it runs inside that namespace. No RTC library is imported here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.run import (  # noqa: E402  (the tests' server code, not a copy)
    PROXY_VARS, SetupError, ensure_server_binary, ip_binary, livekit_server, network_namespace,
)

URL_VAR, KEY_VAR, SECRET_VAR = "RTC_TRIO_BENCH_URL", "RTC_TRIO_BENCH_API_KEY", "RTC_TRIO_BENCH_API_SECRET"
NO_SERVER = (f"no LiveKit server: run the bench as root (it starts one in a network namespace) "
             f"or set {URL_VAR}, {KEY_VAR} and {SECRET_VAR}")
__all__ = ["NO_SERVER", "BenchServer", "SetupError", "bench_server", "from_env", "token"]


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


def token(identity: str, room: str) -> str:
    """A join token for ``room`` on the server the environment names."""
    from livekit import api  # the token minter only (livekit-api), no RTC library

    server = from_env()
    if server is None:
        raise SetupError(NO_SERVER)
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
