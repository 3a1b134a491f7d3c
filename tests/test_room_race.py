"""The failure that started the project, for real: B opens a stream on A's track while A leaves."""

from __future__ import annotations

import random

import trio

import rtc_trio as rtc
from tests.server import require_server
from tests.test_room_support import (
    BOUND, publishing_tone, room_name, run, wait_for_event, warnings_logged,
)

ROUNDS = 20


def test_open_stream_while_the_publisher_leaves() -> None:
    server = require_server()
    outcomes: dict[str, int] = {}
    rng = random.Random(1234)

    async def one_round(b: rtc.Room, events: rtc.RoomEvents, name: str, index: int) -> str:
        async with trio.open_nursery() as nursery:
            leave = trio.Event()

            async def alice() -> None:
                with trio.CancelScope() as scope:
                    async with rtc.connect(server.url, server.token(f"alice{index}", name)) as a:
                        async with publishing_tone(a, 440.0):
                            await leave.wait()
                            await trio.sleep(rng.uniform(0, 0.03))
                            if index % 3 == 0:
                                scope.cancel()  # leave by cancellation
                                await trio.sleep_forever()

            nursery.start_soon(alice)
            subscribed = await wait_for_event(events, rtc.TrackSubscribed)
            leave.set()
            await trio.sleep(rng.uniform(0, 0.03))
            try:
                if index % 2:
                    opened = rtc.open_audio_stream(subscribed.track)
                else:
                    opened = rtc.open_audio_stream(participant=subscribed.participant,
                                                   track_source=rtc.TrackSource.MICROPHONE,
                                                   rejoin_grace=0)  # ends as alice leaves
                async with opened as stream:
                    with trio.fail_after(BOUND):
                        async for _ in stream:
                            pass
                return "ended"
            except trio.ClosedResourceError:
                return "closed before opening"
            except rtc.RtcError:
                return "native refusal"

    async def main() -> None:
        name = room_name("race")
        async with rtc.connect(server.url, server.token("bob", name)) as b:
            events = b.events()
            for index in range(ROUNDS):
                outcome = await one_round(b, events, name, index)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                with trio.fail_after(BOUND):
                    while b.remote_participants:  # alice really left before the next round
                        await trio.sleep(0.01)

    with warnings_logged() as logged:
        run(main)
    assert sum(outcomes.values()) == ROUNDS, outcomes
    assert logged.messages() == []
    print(outcomes)
