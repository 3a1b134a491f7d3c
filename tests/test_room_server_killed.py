"""The server dies while B streams: streams end, the room says so, nothing hangs or leaks.

The server killed is this test's own (started next to the shared one, on other ports): the
other tests keep theirs, whatever their order and whichever subset runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import pytest
import trio

import rtc_trio as rtc
from tests import run as runner
from tests.server import TestServer, require_server
from tests.test_room_support import publishing_tone, room_name, run, wait_for_event

KILLED_BOUND = 90.0  # the native side retries before it gives up; a hang still fails
PRIVATE_PORTS = {"HTTP_PORT": 7980, "RTC_TCP_PORT": 7981, "UDP_PORTS": (50200, 50300)}


def _current_namespace() -> str:
    done = subprocess.run([runner.ip_binary(), "netns", "identify"], capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def private_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestServer]:
    """A livekit-server of this test's own, in the namespace and on the address of the shared
    one (tests/run.py's), with ports of its own."""
    shared = require_server()
    namespace = _current_namespace() if os.geteuid() == 0 else ""
    if not namespace:
        pytest.skip("a server of its own needs root, inside the namespace tests/run.py makes")
    for name, value in PRIVATE_PORTS.items():
        monkeypatch.setattr(runner, name, value)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    address = urlparse(shared.url).hostname or ""
    try:
        with runner.livekit_server(namespace, address, runner.ensure_server_binary(),
                                   tmp_path / "livekit-server.log") as live:
            yield TestServer(live.url, live.api_key, live.api_secret, live.pid)
    finally:
        for sig, handler in handlers.items():  # its cleanup ignores them, for run.py's sake
            signal.signal(sig, handler)


def test_server_killed_while_streaming(private_server: TestServer) -> None:
    server = private_server
    timings: dict[str, float] = {}

    async def main() -> None:
        name = room_name("doomed")
        async with rtc.connect(server.url, server.token("alice", name)) as a:
            async with publishing_tone(a, 440.0):
                async with rtc.connect(server.url, server.token("bob", name)) as b:
                    events = b.events()
                    subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                    async with rtc.open_audio_stream(subscribed.track) as by_track, \
                            rtc.open_audio_stream(participant=subscribed.participant,
                                                  track_source=rtc.TrackSource.MICROPHONE) as by_source:
                        await by_track.receive()
                        await by_source.receive()
                        assert server.pid is not None
                        os.kill(server.pid, signal.SIGKILL)
                        killed = time.monotonic()
                        with trio.fail_after(KILLED_BOUND):
                            async for _ in by_track:
                                pass
                            timings["track stream ended"] = time.monotonic() - killed
                            async for _ in by_source:
                                pass
                            timings["participant stream ended"] = time.monotonic() - killed
                            gone = await wait_for_event(events, rtc.Disconnected, timeout=KILLED_BOUND)
                            timings["disconnected"] = time.monotonic() - killed
                    assert b.connection_state == rtc.ConnectionState.DISCONNECTED
                    assert b.disconnect_reason == gone.reason  # the room says why, as the event did
                    print(gone)
                    left = time.monotonic()
                timings["bob left"] = time.monotonic() - left
        timings["all left"] = time.monotonic() - killed

    run(main, bound=2 * KILLED_BOUND)  # a hang before the kill fails too
    print({k: round(v, 2) for k, v in timings.items()})
