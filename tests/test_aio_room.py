"""rtc_trio.aio rooms through a real livekit-server: connect, publish, receive, data, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from typing import Awaitable, Callable, TypeVar

import numpy as np
import pytest
import trio
import trio_asyncio  # type: ignore[import-untyped]

import rtc_trio
import rtc_trio.aio as rtc
from tests.server import TestServer, require_server
from tests.test_room_support import BOUND, RATE, TEST_BOUND, dominant_frequency, room_name, tone

T = TypeVar("T")
E = TypeVar("E")


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run asyncio code as an app would, on trio-asyncio, failing after TEST_BOUND seconds."""

    async def bounded() -> T:
        with trio.fail_after(TEST_BOUND):
            async with trio_asyncio.open_loop():
                return await trio_asyncio.aio_as_trio(main)()  # type: ignore[no-any-return]

    return trio.run(bounded)


async def next_event(events: rtc.RoomEvents, kind: type[E]) -> E:
    """The next event of ``kind``, within BOUND seconds."""

    async def find() -> E:
        async for event in events:
            if isinstance(event, kind):
                return event
        raise AssertionError(f"the room ended before a {kind.__name__} event")

    return await asyncio.wait_for(find(), BOUND)


async def eventually(predicate: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), BOUND)


async def play(source: rtc.AudioSource, frequency: float) -> None:
    """A tone into ``source``, paced by its queue, until cancelled."""
    index = 0
    while True:
        await source.capture_frame(tone(frequency, index))
        index += 1


async def heard(stream: rtc.AudioStream, seconds: float = 0.5) -> float:
    """The dominant frequency of ``seconds`` of audio from ``stream`` (after 0.2 s settling)."""
    frames = int(seconds * 100)
    chunks = []
    async for frame in stream:
        chunks.append(frame.data[:, 0].copy())
        if len(chunks) >= 20 + frames:
            break
    return dominant_frequency(np.concatenate(chunks[20:]), RATE)


def settled_to(baseline: int) -> Callable[[], bool]:
    def check() -> bool:
        gc.collect()
        return rtc.live_handles() <= baseline

    return check


def test_two_participants_audio_and_state_from_asyncio() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name("aio")
        async with rtc.connect(server.url, server.token("alice", name)) as a:
            assert isinstance(a, rtc.Room) and a.name == name
            assert a.local_participant.identity == "alice"
            events = a.events()
            async with rtc.connect(server.url, server.token("bob", name)) as b:
                async with rtc.open_audio_source(RATE, 1, queue_size_ms=200) as source:
                    with rtc.LocalAudioTrack.create("tone", source) as track:
                        options = rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE)
                        publication = await b.local_participant.publish_track(track, options)
                        assert isinstance(publication, rtc_trio.LocalTrackPublication)
                        player = asyncio.create_task(play(source, 440.0))
                        try:
                            subscribed = await next_event(events, rtc_trio.TrackSubscribed)
                            assert subscribed.participant.identity == "bob"
                            assert a.remote_participants["bob"] is subscribed.participant
                            async with rtc.open_audio_stream(subscribed.track) as stream:
                                assert abs(await heard(stream) - 440.0) < 20
                            async with rtc.open_audio_stream(
                                    participant=subscribed.participant,
                                    track_source=rtc.TrackSource.MICROPHONE) as following:
                                assert abs(await heard(following) - 440.0) < 20
                        finally:
                            player.cancel()
            left = await next_event(events, rtc_trio.ParticipantDisconnected)
            assert left.participant.identity == "bob" and "bob" not in a.remote_participants
        assert a.connection_state == rtc_trio.ConnectionState.DISCONNECTED
        with pytest.raises(trio.ClosedResourceError):
            await a.local_participant.set_metadata("late")
        async for _ in events:  # what is left, then the end: the channel ended with the room
            pass
        with pytest.raises(trio.EndOfChannel):
            await events.receive()

    run(main)


def test_publish_data_round_trip_and_errors_keep_their_types() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name("aio")
        async with rtc.connect(server.url, server.token("alice", name)) as a:
            async with rtc.connect(server.url, server.token("bob", name)) as b:
                await eventually(lambda: "bob" in a.remote_participants)
                events = b.events()
                await a.local_participant.publish_data(b"hello", topic="greetings")
                got = await next_event(events, rtc_trio.DataReceived)
                assert (got.payload, got.topic, got.sender_identity) == (b"hello", "greetings", "alice")
                await a.local_participant.publish_data("to bob", destination_identities=["bob"])
                got = await next_event(events, rtc_trio.DataReceived)
                assert (got.payload, got.sender_identity) == (b"to bob", "alice")
                with pytest.raises(ValueError, match="nobody"):
                    await a.local_participant.publish_data(b"x", destination_identities=["nobody"])
                with pytest.raises(TypeError):
                    await a.local_participant.publish_data(123)  # type: ignore[arg-type]
                with pytest.raises(ValueError, match="bytes"):
                    await a.local_participant.publish_data(b"x" * 100_000)
        with pytest.raises(ValueError, match="url"):
            async with rtc.connect("ftp://nowhere", "token"):
                pytest.fail("the block must not run")
        with pytest.raises(rtc.ConnectError):
            async with rtc.connect(server.url, "not-a-token", timeout=10):
                pytest.fail("the block must not run")

    run(main)


async def _connect_and_stay(server: TestServer, name: str) -> None:
    async with rtc.connect(server.url, server.token("ghost", name)):
        await asyncio.sleep(3600)


def test_task_cancel_mid_connect_leaves_nothing_behind() -> None:
    """Task.cancel() after 0 to 5 loop turns, then at random times within the connect:
    whatever point it lands on, every handle is released (a late room is finished natively)."""
    server = require_server()
    rng = random.Random(11)

    async def main() -> None:
        baseline = rtc.live_handles()
        delays = [None] * 6 + [rng.uniform(0, 0.3) for _ in range(6)]
        for turns, delay in enumerate(delays):
            task = asyncio.create_task(_connect_and_stay(server, room_name("cancel")))
            if delay is None:
                for _ in range(turns):
                    await asyncio.sleep(0)
            else:
                await asyncio.sleep(delay)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, BOUND)
            await eventually(settled_to(baseline))

    run(main)


def test_task_cancel_mid_receive_leaves_nothing_behind() -> None:
    """A stream receive and an event receive, each cancelled while it waits in a room."""
    server = require_server()

    async def main() -> None:
        baseline = rtc.live_handles()
        name = room_name("aio")
        async with rtc.connect(server.url, server.token("alice", name)) as a:
            events = a.events()
            async with rtc.connect(server.url, server.token("bob", name, can_update_own_metadata=True)) as b:
                async with rtc.open_audio_source(RATE, 1, queue_size_ms=200) as source:
                    with rtc.LocalAudioTrack.create("tone", source) as track:
                        await b.local_participant.publish_track(
                            track, rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE))
                        subscribed = await next_event(events, rtc_trio.TrackSubscribed)

                        async def receive_forever() -> None:
                            async with rtc.open_audio_stream(subscribed.track) as stream:
                                while True:  # nothing is played: each receive waits in trio
                                    await stream.receive()

                        for delay in (0.0, 0.05, 0.3):
                            task = asyncio.create_task(receive_forever())
                            await asyncio.sleep(delay)
                            task.cancel()
                            with pytest.raises(asyncio.CancelledError):
                                await asyncio.wait_for(task, BOUND)
                        quiet = a.events()
                        waiting = asyncio.create_task(quiet.receive())
                        await asyncio.sleep(0.05)
                        waiting.cancel()
                        # cancelled, unless an event of the room's own (connection quality)
                        # came within the 50 ms
                        with contextlib.suppress(asyncio.CancelledError):
                            await asyncio.wait_for(waiting, BOUND)
                        await b.local_participant.set_metadata("after")  # the channel still works
                        changed = await asyncio.wait_for(quiet.receive(), BOUND)
                        while not isinstance(changed, rtc_trio.ParticipantMetadataChanged):
                            changed = await asyncio.wait_for(quiet.receive(), BOUND)
                        assert changed.participant.identity == "bob"
        await eventually(settled_to(baseline))

    run(main)
