"""The server dies while B streams: streams end, the room says so, nothing hangs or leaks.

Runs last (the file name sorts last): the server stays dead for the rest of the run.
"""

from __future__ import annotations

import time

import pytest
import trio

import rtc_trio as rtc
from tests.server import kill_server, require_server
from tests.test_room_support import publishing_tone, room_name, run, wait_for_event

KILLED_BOUND = 90.0  # the native side retries before it gives up; a hang still fails


def test_server_killed_while_streaming() -> None:
    server = require_server()
    if server.pid is None:
        pytest.skip("the test server's pid is unknown: it cannot be killed here")
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
                        assert kill_server()
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
