"""The structured-concurrency guarantees of streams, sources and tracks."""

from __future__ import annotations

import logging
import random

import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _handles, _router
from rtc_trio._ffi import lib
from tests.helpers import audio_loopback, living_tasks, numbered_frame


def _routes() -> int:
    return len(_router._routes) + len(_router._once)


async def test_nothing_of_a_stream_outlives_its_block() -> None:
    tasks, routes = living_tasks(), _routes()
    async with audio_loopback(capacity=50) as (source, _, stream):
        for i in range(20):
            await source.capture_frame(numbered_frame(i))
        await stream.receive()
        assert _routes() > routes
    assert living_tasks() == tasks
    assert _routes() == routes
    await trio.sleep(0.2)  # late native events for the closed stream are dropped, not parked
    assert not _router._parked


async def test_stream_used_after_its_block_is_closed() -> None:
    async with audio_loopback() as (source, _, stream):
        pass
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive()
    with pytest.raises(trio.ClosedResourceError):
        await stream.__anext__()
    with pytest.raises(trio.ClosedResourceError):
        await source.capture_frame(numbered_frame(0))


async def test_closed_source_and_track_refuse_new_work() -> None:
    async with rtc.open_audio_source() as source:
        track = rtc.LocalAudioTrack.create("mic", source)
        track.close()
        track.close()  # twice is harmless
        with pytest.raises(trio.ClosedResourceError):
            async with rtc.open_audio_stream(track):
                pass
        with pytest.raises(trio.ClosedResourceError):
            track.mute()
    with pytest.raises(trio.ClosedResourceError):
        rtc.LocalAudioTrack.create("mic", source)


async def test_failed_native_stream_creation_leaves_nothing_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The official SDK's bug: a stream on a track torn down mid-setup orphaned a task that
    raised AttributeError('_ffi_handle') where nobody could catch it. Here the native track
    is dropped behind the Python object's back, as a remote participant leaving would."""
    caplog.set_level(logging.WARNING, logger="rtc_trio")
    tasks, routes = living_tasks(), _routes()
    async with rtc.open_audio_source() as source:
        for _ in range(25):
            track = rtc.LocalAudioTrack.create("mic", source)
            assert lib.rtc_drop_handle(track._handle.id)  # the native side lets go first
            with pytest.raises(rtc.RtcError, match="new_audio_stream"):
                async with rtc.open_audio_stream(track):
                    pytest.fail("the block must not run")
            _handles._held.discard(track._handle.id)  # nothing native is left to release
            assert living_tasks() == tasks and _routes() == routes
    await trio.sleep(0.3)  # give any stray native event time to arrive
    assert living_tasks() == tasks
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_cancellation_while_opening_leaves_nothing() -> None:
    async with rtc.open_audio_source() as source:
        with rtc.LocalAudioTrack.create("mic", source) as track:
            before = rtc.live_handles()
            with trio.CancelScope() as scope:
                scope.cancel()
                async with rtc.open_audio_stream(track):
                    pytest.fail("a cancelled open must not enter the block")
            assert scope.cancelled_caught
            assert rtc.live_handles() == before


async def test_cancellation_at_random_points_leaves_no_handle() -> None:
    rng = random.Random(7)
    async with rtc.open_audio_source(queue_size_ms=0) as source:
        with rtc.LocalAudioTrack.create("mic", source) as track:
            baseline = rtc.live_handles()
            for round_ in range(60):
                with trio.move_on_after(rng.uniform(0, 0.004)):
                    async with rtc.open_audio_stream(track, capacity=8) as stream:
                        async with trio.open_nursery() as nursery:
                            async def produce() -> None:
                                for i in range(1000):
                                    await source.capture_frame(numbered_frame(i))

                            nursery.start_soon(produce)
                            async for frame in stream:
                                del frame
            assert rtc.live_handles() == baseline


async def test_cancelled_capture_loses_nothing_already_sent() -> None:
    async with audio_loopback(queue_size_ms=20, capacity=100) as (source, _, stream):
        sent = 0
        with trio.move_on_after(0.15):
            while True:  # the 20 ms queue makes captures wait: cancel one mid-wait
                await source.capture_frame(numbered_frame(sent))
                sent += 1
        await source.wait_for_playout()
        received = []
        with trio.move_on_after(0.5):
            async for frame in stream:
                if frame.data.any():  # the queue plays silence whenever it runs empty
                    received.append(frame.data[:, 0].copy())
        assert len(received) >= sent  # every completed capture arrived, in order
        for i in range(sent):
            assert (received[i] == numbered_frame(i).data).all()


async def test_two_tasks_cannot_read_one_stream_at_once() -> None:
    async with audio_loopback() as (_, _, stream):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.receive)
            await trio.testing.wait_all_tasks_blocked()  # it waits for a frame
            with pytest.raises(trio.BusyResourceError):
                await stream.receive()
            nursery.cancel_scope.cancel()


async def test_closing_a_stream_wakes_its_blocked_reader() -> None:
    async with audio_loopback() as (_, _, stream):
        async with trio.open_nursery() as nursery:
            async def read() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await stream.receive()

            nursery.start_soon(read)
            await trio.sleep(0.05)
            stream._close()


async def test_events_for_a_late_subscriber_are_parked_then_claimed() -> None:
    key = 987_654_321
    _router.deliver(key, "first")
    _router.deliver(key, "second")
    _router.end(key)
    sub: _router.Subscription[str] = _router.subscribe(key, _router.Subscription(4))
    assert [await sub.receive(), await sub.receive()] == ["first", "second"]
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()
    sub.close()
    assert not _router._parked


async def test_unclaimed_parked_events_expire_and_release_their_handles() -> None:
    async with rtc.open_audio_source() as source:
        # a real native handle, parked under a key nobody will subscribe to
        track = rtc.LocalAudioTrack.create("mic", source)
        handle = track._handle.id
        track._handle.id = 0  # the router owns it now
        _router.deliver(123_456_789, object(), handle)
        assert rtc.live_handles() >= 2
        _router.sweep_parked(max_age=0)
        assert handle not in _handles._held
        assert not _router._parked
