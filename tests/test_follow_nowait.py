"""A participant stream across the participant's leave and rejoin: read without waiting
(receive_nowait, the aio fast path), between the two it has no frame, it is not at its end;
read late, it loses none of the frames it buffered before the rejoin (audio and video), and
a participant coming and going does not grow its buffer."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import AsyncContextManager, AsyncIterator, Awaitable, Callable, TypeVar

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _handles
from tests.server import require_server
from tests.test_room_support import dominant_frequency, publishing_tone, room_name, wait_for_event

S = TypeVar("S")
BOUND = 60.0
FIRST, SECOND = 400.0, 800.0  # whole 100 Hz bins of a 10 ms frame


@dataclass
class Visits:
    """Alice plays FIRST, leaves (``left``), and comes back playing SECOND (more visits:
    alternately), the last time for good (``back``: after a second of it); bob's stream
    follows her."""

    stream: rtc.AudioStream
    left: trio.Event = field(default_factory=trio.Event)
    back: trio.Event = field(default_factory=trio.Event)


@contextlib.asynccontextmanager
async def bob_follows(name: str, alice: Callable[[], Awaitable[None]],
                      follow: Callable[[rtc.RemoteParticipant], AsyncContextManager[S]]
                      ) -> AsyncIterator[S]:
    """Bob in room ``name`` while ``alice`` runs, following her with the stream ``follow``
    opens once her first track is subscribed."""
    server = require_server()
    with trio.fail_after(BOUND):
        async with rtc.connect(server.url, server.token("bob", name)) as bob:
            events = bob.events()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(alice)
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                async with follow(subscribed.participant) as stream:
                    yield stream
                nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def alice_visits(prefix: str, capacity: int = 100, times: int = 2) -> AsyncIterator[Visits]:
    server = require_server()
    name = room_name(prefix)
    opened = trio.Event()  # bob follows her: she may leave (on a loaded host it takes a while)
    left, back = trio.Event(), trio.Event()

    async def alice() -> None:
        for visit in range(times):
            async with rtc.connect(server.url, server.token("alice", name)) as room:
                async with publishing_tone(room, (FIRST, SECOND)[visit % 2]):
                    await opened.wait()
                    await trio.sleep(1.0)
                    if visit == times - 1:
                        back.set()
                        await trio.sleep_forever()
            left.set()

    def follow(participant: rtc.RemoteParticipant) -> AsyncContextManager[rtc.AudioStream]:
        return rtc.open_audio_stream(participant=participant, track_source=rtc.TrackSource.MICROPHONE,
                                     capacity=capacity, rejoin_grace=30.0)

    async with bob_follows(name, alice, follow) as stream:
        opened.set()
        yield Visits(stream, left, back)


@pytest.mark.parametrize("wait", [False, True], ids=["receive_nowait", "receive"])
async def test_a_reader_keeping_up_hears_the_rejoin(wait: bool) -> None:
    """Read as it comes: with receive_nowait() (the aio fast path) the stream has no frame
    between the leave and the rejoin but is not at its end; with receive() the reader waits
    at the end of the old native stream and gets the new one's frames."""
    heard: list[float] = []
    async with alice_visits("follow-nowait") as visits:
        while not (visits.back.is_set() and len(heard) >= 30
                   and np.isclose(heard[-1], SECOND, atol=50)):
            if wait:
                received = None
                with trio.move_on_after(10):  # (so that a reader left waiting fails fast)
                    received = await visits.stream.receive()
                assert received is not None, f"no frame in 10 s; heard {heard[-5:]}"
                frame = received
            else:
                try:
                    frame = visits.stream.receive_nowait()  # EndOfChannel here fails the test
                except trio.WouldBlock:
                    await trio.sleep(0.005)
                    continue
            if visits.left.is_set() and frame.data.any():
                heard.append(dominant_frequency(frame.data[:, 0], frame.sample_rate))
    assert any(np.isclose(f, SECOND, atol=50) for f in heard), heard[-10:]


@pytest.mark.parametrize("read", [True, False], ids=["read", "closed-unread"])
async def test_frames_buffered_before_a_rejoin_come_first(read: bool) -> None:
    """Bob reads nothing while Alice plays FIRST, leaves, and comes back playing SECOND: then
    he gets every FIRST frame he buffered, then SECOND, and nothing is dropped. The first
    native stream is released at the rejoin (its frames are carried over); closed unread,
    the stream lets go of everything."""
    heard: list[float] = []
    async with alice_visits("follow-keep", capacity=3000) as visits:
        stream = visits.stream
        first_native = stream._handle.id
        await visits.left.wait()
        before = stream.statistics().buffered  # all from Alice's first visit
        await visits.back.wait()  # her second track has played for a second
        while stream.statistics().buffered < before + 30:
            await trio.sleep(0.05)
        native = [first_native, stream._handle.id]
        assert not _handles.is_held(first_native), "the first native stream is still held"
        while read and (len(heard) < 2 or not np.isclose(heard[-1], SECOND, atol=50)
                        or sum(np.isclose(heard, SECOND, atol=50)) < 30):
            frame = await stream.receive()
            if frame.data.any():
                heard.append(dominant_frequency(frame.data[:, 0], frame.sample_rate))
        dropped = stream.dropped
    held = [handle for handle in native if _handles.is_held(handle)]
    assert before >= 50, before
    assert dropped == 0
    assert not held, f"native streams {held} outlived their stream's block"
    assert not stream._carried, "frames carried over outlived the stream's block"
    if not read:
        return
    first = [i for i, f in enumerate(heard) if np.isclose(f, FIRST, atol=50)]
    second = [i for i, f in enumerate(heard) if np.isclose(f, SECOND, atol=50)]
    assert len(first) >= 50, f"{len(first)} FIRST frames of {before} buffered before the rejoin"
    assert max(first) < min(second), "FIRST after SECOND: the two sources interleaved"


async def test_a_participant_coming_and_going_does_not_grow_the_buffer() -> None:
    """Four visits of a second each (about 100 frames each) into a stream of capacity 50
    that nobody reads: at most 50 frames are carried over from the visits before (the
    oldest are dropped, and counted), the current native stream holds its own 50, and only
    the current native stream is held."""
    capacity = 50
    async with alice_visits("follow-flap", capacity=capacity, times=4) as visits:
        stream = visits.stream
        first_native = stream._handle.id
        await visits.back.wait()
        statistics = stream.statistics()
        kept: list[rtc.AudioFrame] = []
        while len(kept) < statistics.buffered:
            kept.append(stream.receive_nowait())  # everything kept is readable, at once
        assert not _handles.is_held(first_native)
    assert statistics.buffered <= 2 * capacity, statistics


RED, BLUE = (200, 40, 40), (40, 40, 200)


async def _play(room: rtc.Room, colour: tuple[int, int, int], until: trio.Event) -> None:
    """``room`` publishes a camera of ``colour`` at 30 fps until ``until`` is set."""
    width, height = 160, 120
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[...] = (*colour, 255)
    frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba)
    async with rtc.open_video_source(width, height) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            await room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.CAMERA))
            index = 0
            while not until.is_set():
                source.capture_frame(frame, timestamp_us=index * 33_333)
                index += 1
                await trio.sleep(1 / 30)


async def test_video_frames_buffered_before_a_rejoin_come_first() -> None:
    """The same for video (frames kept by the router, not a native ring): red frames
    buffered before Alice's rejoin come before her blue ones."""
    server = require_server()
    name = room_name("follow-video")
    enough, left, forever = trio.Event(), trio.Event(), trio.Event()

    async def alice() -> None:
        for colour, until in ((RED, enough), (BLUE, forever)):
            async with rtc.connect(server.url, server.token("alice", name)) as room:
                await _play(room, colour, until)
            left.set()

    def colour_of(frame: rtc.VideoFrame) -> str:
        mean = frame.data[..., :3].reshape(-1, 3).mean(axis=0)
        for label, colour in (("red", RED), ("blue", BLUE)):
            if np.all(np.abs(mean - np.array(colour)) < 40):
                return label
        return "other"  # the encoder's first frames

    def follow(participant: rtc.RemoteParticipant) -> AsyncContextManager[rtc.VideoStream]:
        return rtc.open_video_stream(participant=participant, track_source=rtc.TrackSource.CAMERA,
                                     format=rtc.VideoBufferType.RGBA, capacity=30, rejoin_grace=30.0)

    seen: list[str] = []
    async with bob_follows(name, alice, follow) as stream:
        while stream.statistics().buffered < 15:
            await trio.sleep(0.02)
        enough.set()  # she leaves, and comes back blue
        await left.wait()
        before = stream.statistics().buffered
        while stream.statistics().buffered < before + 5:
            await trio.sleep(0.02)  # blue frames are buffered too
        while seen.count("blue") < 5:
            seen.append(colour_of(await stream.receive()))
    red = [i for i, c in enumerate(seen) if c == "red"]
    blue = [i for i, c in enumerate(seen) if c == "blue"]
    assert len(red) >= 5, seen
    assert max(red) < min(blue), seen
