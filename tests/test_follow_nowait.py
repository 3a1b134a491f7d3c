"""A participant stream read without waiting (receive_nowait, the aio fast path) across the
participant's leave and rejoin: between the two it has no frame, it is not at its end."""

from __future__ import annotations

import numpy as np
import trio

import rtc_trio as rtc
from tests.server import require_server
from tests.test_room_support import dominant_frequency, publishing_tone, room_name, wait_for_event

BOUND = 60.0
FIRST, SECOND = 400.0, 800.0  # whole 100 Hz bins of a 10 ms frame


async def test_receive_nowait_waits_through_a_rejoin() -> None:
    server = require_server()
    name = room_name("follow-nowait")
    left, back = trio.Event(), trio.Event()

    async def alice() -> None:
        for frequency, done in ((FIRST, left), (SECOND, None)):
            async with rtc.connect(server.url, server.token("alice", name)) as room:
                async with publishing_tone(room, frequency):
                    if done is None:
                        back.set()
                        await trio.sleep_forever()
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
