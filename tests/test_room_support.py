"""Helpers shared by the room tests (no tests here)."""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from typing import AsyncIterator, Awaitable, Callable, Iterator, TypeVar

import numpy as np
import numpy.typing as npt
import trio

import rtc_trio as rtc
from tests.server import TestServer

E = TypeVar("E")
RATE = 48000
BOUND = 30.0  # generous bound for anything that involves the server: a hang fails, slowness does not
TEST_BOUND = 120.0  # a whole server-backed test: its connects and disconnects included


def room_name(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def wait_for_event(events: rtc.RoomEvents, kind: type[E],
                         predicate: Callable[[E], bool] = lambda _: True,
                         timeout: float = BOUND) -> E:
    """The next event of ``kind`` matching ``predicate``; fails the test after ``timeout``."""
    with trio.fail_after(timeout):
        async for event in events:
            if isinstance(event, kind) and predicate(event):
                return event
    raise AssertionError(f"the room ended before a {kind.__name__} event")


async def wait_until(predicate: Callable[[], bool], timeout: float = BOUND) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


def tone(frequency: float, index: int, samples: int = 480, rate: int = RATE) -> rtc.AudioFrame:
    t = (np.arange(samples) + index * samples) / rate
    data = (0.5 * 32767 * np.sin(2 * math.pi * frequency * t)).astype(np.int16)
    return rtc.AudioFrame(data, sample_rate=rate)


def dominant_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[:3] = 0  # ignore DC
    return float(np.argmax(spectrum)) * rate / len(x)


async def play_tone(source: rtc.AudioSource, frequency: float) -> None:
    """Feed ``source`` with a tone, paced in real time by the source's queue, until cancelled."""
    index = 0
    while True:
        await source.capture_frame(tone(frequency, index))
        index += 1


@contextlib.asynccontextmanager
async def publishing_tone(room: rtc.Room, frequency: float) -> AsyncIterator[rtc.LocalTrackPublication]:
    """``room`` publishes a microphone track playing ``frequency`` for the duration of the block."""
    async with rtc.open_audio_source(RATE, 1, queue_size_ms=200) as source:
        with rtc.LocalAudioTrack.create("tone", source) as track:
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE)
            publication = await room.local_participant.publish_track(track, options)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(play_tone, source, frequency)
                yield publication
                nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def two_rooms(server: TestServer, **options: object) -> AsyncIterator[tuple[rtc.Room, rtc.Room]]:
    """Participants ``alice`` and ``bob`` in one fresh room."""
    name = room_name()
    async with rtc.connect(server.url, server.token("alice", name, can_update_own_metadata=True), **options) as a:  # type: ignore[arg-type]
        async with rtc.connect(server.url, server.token("bob", name, can_update_own_metadata=True), **options) as b:  # type: ignore[arg-type]
            await wait_until(lambda: "bob" in a.remote_participants)
            yield a, b


class Records(logging.Handler):
    """Collects what the ``rtc_trio`` logger emits at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@contextlib.contextmanager
def warnings_logged() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("rtc_trio")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def run(main: Callable[..., Awaitable[object]], *args: object, bound: float = TEST_BOUND) -> None:
    """``trio.run(main, *args)``, failing it with ``trio.TooSlowError`` after ``bound`` seconds."""

    async def bounded() -> None:
        with trio.fail_after(bound):
            await main(*args)

    trio.run(bounded)
