"""A participant stream across the participant's leave and rejoin: read without waiting
(receive_nowait, the aio fast path), between the two it has no frame, it is not at its end;
read late, it loses none of the frames it buffered before the rejoin."""

from __future__ import annotations

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _handles
from tests.server import require_server
from tests.test_room_support import dominant_frequency, publishing_tone, room_name, wait_for_event

BOUND = 60.0
FIRST, SECOND = 400.0, 800.0  # whole 100 Hz bins of a 10 ms frame


async def test_receive_nowait_waits_through_a_rejoin() -> None:
    server = require_server()
    name = room_name("follow-nowait")
    left, back = trio.Event(), trio.Event()
    opened = trio.Event()  # bob follows her: she may leave (on a loaded host it takes a while)

    async def alice() -> None:
        for frequency, done in ((FIRST, left), (SECOND, None)):
            async with rtc.connect(server.url, server.token("alice", name)) as room:
                async with publishing_tone(room, frequency):
                    if done is None:
                        back.set()
                        await trio.sleep_forever()
                    await opened.wait()
                    await trio.sleep(1.0)
            done.set()

    with trio.fail_after(BOUND):
        async with rtc.connect(server.url, server.token("bob", name)) as bob:
            events = bob.events()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(alice)
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                async with rtc.open_audio_stream(
                        participant=subscribed.participant, track_source=rtc.TrackSource.MICROPHONE,
                        rejoin_grace=30.0) as stream:
                    opened.set()
                    heard: list[float] = []
                    while not (back.is_set() and len(heard) >= 30
                               and np.isclose(heard[-1], SECOND, atol=50)):
                        try:
                            frame = stream.receive_nowait()  # EndOfChannel here fails the test
                        except trio.WouldBlock:
                            await trio.sleep(0.005)
                            continue
                        if left.is_set() and frame.data.any():
                            heard.append(dominant_frequency(frame.data[:, 0], frame.sample_rate))
                nursery.cancel_scope.cancel()
    assert any(np.isclose(f, SECOND, atol=50) for f in heard), heard[-10:]


@pytest.mark.parametrize("read", [True, False], ids=["read", "closed-unread"])
async def test_frames_buffered_before_a_rejoin_come_first(read: bool) -> None:
    """Bob reads nothing while Alice plays FIRST, leaves, and comes back playing SECOND: then
    he gets every FIRST frame he buffered, then SECOND, and nothing is dropped. Closed
    unread, the stream releases both native streams."""
    server = require_server()
    name = room_name("follow-keep")
    left, back = trio.Event(), trio.Event()
    opened = trio.Event()  # bob follows her: she may leave (on a loaded host it takes a while)

    async def alice() -> None:
        for frequency, done in ((FIRST, left), (SECOND, back)):
            async with rtc.connect(server.url, server.token("alice", name)) as room:
                async with publishing_tone(room, frequency):
                    await opened.wait()
                    await trio.sleep(1.0)
                    if frequency == SECOND:
                        back.set()
                        await trio.sleep_forever()
            done.set()

    heard: list[float] = []
    with trio.fail_after(BOUND):
        async with rtc.connect(server.url, server.token("bob", name)) as bob:
            events = bob.events()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(alice)
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                async with rtc.open_audio_stream(
                        participant=subscribed.participant, track_source=rtc.TrackSource.MICROPHONE,
                        capacity=3000, rejoin_grace=30.0) as stream:
                    opened.set()
                    await left.wait()
                    before = stream.statistics().buffered  # all from Alice's first visit
                    await back.wait()  # her second track has played for a second
                    while stream.statistics().buffered < before + 30:
                        await trio.sleep(0.05)
                    native = [handle.id for _, handle in stream._sources()]
                    while read and (len(heard) < 2 or not np.isclose(heard[-1], SECOND, atol=50)
                                    or sum(np.isclose(heard, SECOND, atol=50)) < 30):
                        frame = await stream.receive()
                        if frame.data.any():
                            heard.append(dominant_frequency(frame.data[:, 0], frame.sample_rate))
                    dropped = stream.dropped
                held = [handle for handle in native if _handles.is_held(handle)]
                nursery.cancel_scope.cancel()
    assert before >= 50, before
    assert dropped == 0
    assert not held, f"native streams {held} outlived their stream's block"
    if not read:
        assert len(native) == 2, native  # the old native stream still buffered FIRST
        return
    first = [i for i, f in enumerate(heard) if np.isclose(f, FIRST, atol=50)]
    second = [i for i, f in enumerate(heard) if np.isclose(f, SECOND, atol=50)]
    assert len(first) >= 50, f"{len(first)} FIRST frames of {before} buffered before the rejoin"
    assert max(first) < min(second), "FIRST after SECOND: the two sources interleaved"
