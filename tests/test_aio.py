"""rtc_trio.aio: the stream layer from plain asyncio code running on trio-asyncio."""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Awaitable, Callable, TypeVar

import numpy as np
import pytest
import trio
import trio_asyncio  # type: ignore[import-untyped]

import rtc_trio
import rtc_trio.aio as rtc
from rtc_trio import _handles
from rtc_trio._ffi import lib
from tests.helpers import living_tasks, numbered_frame

T = TypeVar("T")


AIO_BOUND = 60.0  # a whole test: a hang fails it, slowness does not


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run an asyncio coroutine function the way an asyncio app would, on trio-asyncio
    (``trio_asyncio.run``), failing after AIO_BOUND seconds."""

    async def bounded() -> T:
        with trio.fail_after(AIO_BOUND):
            async with trio_asyncio.open_loop():
                return await trio_asyncio.aio_as_trio(main)()  # type: ignore[no-any-return]

    return trio.run(bounded)


def settled() -> int:
    gc.collect()  # frames still referenced by a dead task's traceback
    return rtc.live_handles()


def solid_rgba(width: int, height: int, rgb: tuple[int, int, int]) -> rtc.VideoFrame:
    data = np.empty((height, width, 4), np.uint8)
    data[..., :3] = rgb
    data[..., 3] = 255
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, data)


# -- round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2])
def test_exact_audio_round_trip_between_asyncio_tasks(channels: int) -> None:
    count = 400

    async def main() -> tuple[list[rtc.AudioFrame], list[rtc.AudioFrame], int]:
        sent = [numbered_frame(i, channels=channels) for i in range(count)]
        queue: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()
        async with rtc.open_audio_source(48000, channels, queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, num_channels=channels, capacity=count) as stream:

                    async def produce() -> None:
                        for frame in sent:
                            await source.capture_frame(frame)

                    async def consume() -> None:
                        async for frame in stream:
                            await queue.put(frame)
                            if queue.qsize() == count:
                                return

                    await asyncio.wait_for(asyncio.gather(produce(), consume()), 20)
                    dropped = stream.dropped
        return sent, [queue.get_nowait() for _ in range(queue.qsize())], dropped

    sent, received, dropped = run(main)
    assert dropped == 0 and len(received) == count
    for want, got in zip(sent, received):
        assert type(got) is rtc_trio.AudioFrame  # the zero-copy frame itself, not a wrapper
        assert got.data.shape == (480, channels) and not got.data.flags.owndata
        np.testing.assert_array_equal(got.data.reshape(-1), want.data.reshape(-1))
    del received


async def test_video_round_trip_from_a_loop_opened_inside_trio() -> None:
    width, height, colour = 320, 240, (200, 40, 120)

    async def main() -> rtc.VideoFrame:
        async with rtc.open_video_source(width, height) as source:
            with rtc.LocalVideoTrack.create("cam", source) as track:
                async with rtc.open_video_stream(track, format=rtc.VideoBufferType.RGBA) as stream:
                    assert stream.format == rtc.VideoBufferType.RGBA and stream.capacity == 4
                    for i in range(3):
                        source.capture_frame(solid_rgba(width, height, colour), timestamp_us=i * 33_333)
                    while True:  # a new source sends black keepalive frames until its first capture
                        frame = await asyncio.wait_for(stream.receive(), 10)
                        if frame.data[..., :3].any():
                            return frame

    with trio.fail_after(AIO_BOUND):
        async with trio_asyncio.open_loop():
            frame = await trio_asyncio.aio_as_trio(main)()
    assert (frame.width, frame.height, frame.type) == (width, height, rtc.VideoBufferType.RGBA)
    mean = frame.data[..., :3].reshape(-1, 3).mean(axis=0)
    assert np.all(np.abs(mean - colour) <= 6), mean


def test_sync_methods_pass_through() -> None:
    async def main() -> None:
        async with rtc.open_audio_source(48000, 1, queue_size_ms=1000) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                track.mute()
                assert track.muted
                track.unmute()
                assert not track.muted
                await source.capture_frame(numbered_frame(0, samples=24000))  # 500 ms
                assert 0.0 < source.queued_duration <= 0.5
                await asyncio.wait_for(source.wait_for_playout(), 5)
                assert source.queued_duration == 0.0
                await source.capture_frame(numbered_frame(1, samples=4800))
                source.clear_queue()
                assert source.queued_duration == 0.0

    run(main)


def test_closing_the_track_ends_iteration_and_receive_raises_end_of_channel() -> None:
    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track) as stream:
                    track.close()
                    assert [f async for f in stream] == []
                    with pytest.raises(trio.EndOfChannel):
                        await stream.receive()

    run(main)


# -- scopes and cancellation -------------------------------------------------------------

def test_leaving_the_block_closes_what_it_opened_and_ends_its_trio_task() -> None:
    async def main() -> None:
        baseline, tasks = rtc.live_handles(), living_tasks()
        async with rtc.open_audio_source(queue_size_ms=0) as source:  # no silence frames
            assert living_tasks() == tasks + 1  # the one trio task holding the block
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track) as stream:
                    assert rtc.live_handles() == baseline + 3  # a direct source has no playout observer
        assert rtc.live_handles() == baseline and living_tasks() == tasks
        with pytest.raises(trio.ClosedResourceError):
            await source.capture_frame(numbered_frame(0))
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive()

    run(main)


def test_an_exception_in_the_block_comes_out_unchanged_after_closing() -> None:
    class Boom(Exception):
        pass

    async def main() -> None:
        baseline = rtc.live_handles()
        error = Boom()
        with pytest.raises(Boom) as caught:
            async with rtc.open_audio_source() as source:
                with rtc.LocalAudioTrack.create("mic", source) as track:
                    async with rtc.open_audio_stream(track):
                        raise error
        assert caught.value is error
        assert rtc.live_handles() == baseline

    run(main)


def test_cancelling_an_asyncio_consumer_leaves_no_handle() -> None:
    async def main() -> None:
        baseline = rtc.live_handles()
        started = asyncio.Event()

        async def consumer() -> None:
            async with rtc.open_audio_source(queue_size_ms=0) as source:
                with rtc.LocalAudioTrack.create("mic", source) as track:
                    async with rtc.open_audio_stream(track, capacity=8) as stream:
                        for i in range(5):
                            await source.capture_frame(numbered_frame(i))
                        started.set()
                        async for frame in stream:  # reads 5 frames, then waits for more
                            pass

        task = asyncio.create_task(consumer())
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        assert settled() == baseline

    run(main)


def test_cancelling_a_producer_blocked_on_a_full_queue_stops_it() -> None:
    rng = random.Random(3)

    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=20) as source:
            with rtc.LocalAudioTrack.create("mic", source):
                for _ in range(20):
                    sent = 0

                    async def produce() -> None:
                        nonlocal sent
                        while True:  # the 20 ms queue paces captures: cancel lands anywhere
                            await source.capture_frame(numbered_frame(sent))
                            sent += 1

                    task = asyncio.create_task(produce())
                    await asyncio.sleep(rng.uniform(0, 0.03))
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await asyncio.wait_for(task, 5)
                    await asyncio.wait_for(source.wait_for_playout(), 5)  # still usable

    run(main)


def test_cancellation_at_every_point_of_a_session_leaves_no_handle() -> None:
    """Task.cancel() after 0, 1, 2, ... loop turns, then at random times: opening, capturing,
    receiving and closing are each interrupted somewhere; nothing is ever left behind."""
    rng = random.Random(7)

    async def session() -> None:
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, capacity=8) as stream:

                    async def produce() -> None:
                        for i in range(1000):
                            await source.capture_frame(numbered_frame(i))

                    async def consume() -> None:
                        async for frame in stream:
                            del frame

                    await asyncio.gather(produce(), consume())

    async def main() -> None:
        baseline, tasks = rtc.live_handles(), living_tasks()
        for turns in range(40):
            task = asyncio.create_task(session())
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            assert settled() == baseline, f"after {turns} turns"
        for _ in range(40):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(session(), rng.uniform(0, 0.01))
            assert settled() == baseline
        await asyncio.sleep(0.1)
        assert living_tasks() == tasks

    run(main)


# -- errors ------------------------------------------------------------------------------

def test_errors_reach_asyncio_with_their_own_types() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="sample_rate"):
            async with rtc.open_audio_source(sample_rate=0):
                pytest.fail("the block must not run")
        with pytest.raises(TypeError, match="queue_size_ms"):
            async with rtc.open_audio_source(queue_size_ms=1.5):  # type: ignore[arg-type]
                pytest.fail("the block must not run")
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with pytest.raises(TypeError, match="AudioFrame"):
                await source.capture_frame(b"\0" * 960)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="10 ms frames"):
                await source.capture_frame(numbered_frame(0, samples=960))
            with pytest.raises(TypeError, match="AudioSource"):
                rtc.LocalAudioTrack.create("mic", object())  # type: ignore[arg-type]
            async with rtc.open_video_source(64, 48) as vsource:
                with rtc.LocalVideoTrack.create("cam", vsource) as vtrack:
                    with pytest.raises(TypeError, match="not an audio track"):
                        async with rtc.open_audio_stream(vtrack):
                            pytest.fail("the block must not run")
            with rtc.LocalAudioTrack.create("mic", source) as track:
                track.close()
                with pytest.raises(trio.ClosedResourceError):
                    async with rtc.open_audio_stream(track):
                        pytest.fail("the block must not run")

    run(main)


def test_native_failures_reach_asyncio_as_rtc_error() -> None:
    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source):
                source._source.sample_rate = 16000  # lie to the trio source: the native check refuses
                await source.capture_frame(numbered_frame(0, samples=160, rate=16000))
                with pytest.raises(rtc.RtcError, match="sample_rate and num_channels don't match"):
                    await source.capture_frame(numbered_frame(1, samples=160, rate=16000))
                source._source.sample_rate = 48000
            track = rtc.LocalAudioTrack.create("mic", source)
            assert lib.rtc_drop_handle(track._handle.id)  # the native track goes first
            with pytest.raises(rtc.RtcError, match="new_audio_stream"):
                async with rtc.open_audio_stream(track):
                    pytest.fail("the block must not run")
            _handles._held.discard(track._handle.id)  # nothing native is left to release

    run(main)


def test_a_failure_to_wrap_the_entered_object_leaves_the_block_and_its_trio_task() -> None:
    """The trio side entered, then turning its object into the asyncio one failed: the caller
    gets that error, and the trio task holding the block exits the manager with it (closing
    the source) instead of waiting for a block that never runs."""

    class WrapFailed(Exception):
        pass

    def wrap(source: rtc_trio.AudioSource, _: object) -> object:
        raise WrapFailed(source)

    failing_open = rtc._adapt(rtc_trio.open_audio_source, wrap)

    async def main() -> None:
        baseline, tasks = rtc.live_handles(), living_tasks()
        with pytest.raises(WrapFailed) as caught:
            async with failing_open():
                pytest.fail("the block must not run")
        source = caught.value.args[0]
        assert isinstance(source, rtc_trio.AudioSource)
        assert living_tasks() == tasks and rtc.live_handles() == baseline
        with pytest.raises(trio.ClosedResourceError):
            source.clear_queue()

    run(main)


def test_a_context_manager_is_entered_once() -> None:
    async def main() -> None:
        opener = rtc.open_audio_source()
        async with opener:
            with pytest.raises(RuntimeError, match="already entered"):
                async with opener:
                    pytest.fail("the block must not run")

    run(main)


# -- misuse ------------------------------------------------------------------------------

async def _open_a_source() -> None:
    async with rtc.open_audio_source():
        pytest.fail("the block must not run")


def test_plain_asyncio_run_is_refused_with_how_to_run_it() -> None:
    # Once trio_asyncio is imported, asyncio.run() makes its thread-backed SyncTrioEventLoop.
    baseline = rtc.live_handles()
    with pytest.raises(rtc.NotUnderTrioAsyncio, match=r"trio_asyncio\.run\(") as caught:
        asyncio.run(_open_a_source())
    assert isinstance(caught.value, RuntimeError)
    assert "trio_asyncio.open_loop()" in str(caught.value)
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:  # stock asyncio
        with pytest.raises(rtc.NotUnderTrioAsyncio, match="SelectorEventLoop"):
            runner.run(_open_a_source())
    assert rtc.live_handles() == baseline  # refused up front: nothing native was tried


async def test_calling_from_trio_code_is_refused() -> None:
    async with trio_asyncio.open_loop():
        with pytest.raises(rtc.NotUnderTrioAsyncio, match="trio code uses rtc_trio"):
            async with rtc.open_audio_source():  # trio code, not an asyncio task
                pytest.fail("the block must not run")
    with pytest.raises(rtc.NotUnderTrioAsyncio, match="trio_asyncio.run"):
        async with rtc.open_audio_source():
            pytest.fail("the block must not run")


def test_an_aio_object_awaited_from_trio_code_is_refused() -> None:
    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=0) as source:

            async def trio_side() -> None:
                await source.capture_frame(numbered_frame(0))

            with pytest.raises(rtc.NotUnderTrioAsyncio, match="trio code uses rtc_trio"):
                await trio_asyncio.trio_as_aio(trio_side)()

    run(main)


def test_public_names_match_rtc_trio() -> None:
    names = ["open_audio_source", "open_video_source", "LocalAudioTrack", "LocalVideoTrack",
             "open_audio_stream", "open_video_stream", "AudioFrame", "VideoFrame",
             "VideoBufferType", "TrackSource", "RtcError", "live_handles"]
    for name in names:
        assert hasattr(rtc, name) and hasattr(rtc_trio, name), name
    for name in ["AudioFrame", "VideoFrame", "VideoBufferType", "TrackSource", "RtcError", "live_handles"]:
        assert getattr(rtc, name) is getattr(rtc_trio, name), name
    assert issubclass(rtc.LocalAudioTrack, rtc_trio.LocalAudioTrack)



# -- what completes at once, and waits in the block's task -------------------------------

async def _buffered(stream: rtc.AudioStream, count: int) -> None:
    async def poll() -> None:
        while stream.statistics().buffered < count:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), 10)


def test_receive_nowait_and_receive_batch_from_asyncio() -> None:
    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, capacity=16) as stream:
                    with pytest.raises(trio.WouldBlock):
                        stream.receive_nowait()
                    for i in range(6):
                        await source.capture_frame(numbered_frame(i))
                    await _buffered(stream, 6)
                    first = stream.receive_nowait()
                    batch = await stream.receive_batch(max_frames=3)
                    rest = await stream.receive_batch()
                    got = [first, *batch, *rest]
                    assert [len(batch), len(rest)] == [3, 2]
                    for i, frame in enumerate(got):
                        np.testing.assert_array_equal(frame.data[:, 0], numbered_frame(i).data)
                    del first, batch, rest, got, frame
                    with pytest.raises(ValueError, match="max_frames"):
                        await stream.receive_batch(0)
                    with pytest.raises(TypeError, match="max_frames"):
                        await stream.receive_batch(2.0)  # type: ignore[arg-type]
                    track.close()
                    with pytest.raises(trio.EndOfChannel):
                        await asyncio.wait_for(stream.receive_batch(), 10)
                    with pytest.raises(trio.EndOfChannel):
                        stream.receive_nowait()
        with pytest.raises(trio.ClosedResourceError):
            stream.receive_nowait()

    run(main)


def test_a_consumer_that_always_finds_frames_still_lets_other_tasks_run() -> None:
    """Buffered frames come without suspending, but not forever: every YIELD_EVERY-th
    receive in a row yields to the loop."""
    count = 96

    async def main() -> None:
        turns = 0

        async def other() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, capacity=count) as stream:
                    for i in range(count):
                        await source.capture_frame(numbered_frame(i))
                    await _buffered(stream, count)
                    side = asyncio.create_task(other())
                    await asyncio.sleep(0)
                    before = turns
                    for _ in range(count):
                        await stream.receive()
                    ran = turns - before
                    side.cancel()
        assert ran >= count // rtc.YIELD_EVERY - 1, ran
        assert ran <= count // rtc.YIELD_EVERY + 1, ran  # and not once per frame

    run(main)


def test_a_cancelled_wait_leaves_the_stream_usable_and_loses_no_frame() -> None:
    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, capacity=16) as stream:
                    for _ in range(3):  # a wait on an empty stream, cancelled each time
                        with pytest.raises(asyncio.TimeoutError):
                            await asyncio.wait_for(stream.receive(), 0.05)

                    async def trio_side_stopped() -> None:  # nothing is left waiting in trio
                        while stream._link._running is not None:
                            await asyncio.sleep(0.005)

                    await asyncio.wait_for(trio_side_stopped(), 10)
                    for i in range(2):
                        await source.capture_frame(numbered_frame(i))
                    got = [await asyncio.wait_for(stream.receive(), 10) for _ in range(2)]
                    for i, frame in enumerate(got):
                        np.testing.assert_array_equal(frame.data[:, 0], numbered_frame(i).data)
                    del got, frame

    run(main)


def test_leaving_the_block_ends_a_wait_in_another_task_with_closed_resource_error() -> None:
    async def main() -> None:
        baseline = rtc.live_handles()
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track) as stream:
                    waiting = asyncio.create_task(stream.receive())
                    await asyncio.sleep(0.05)
                    assert not waiting.done()
        with pytest.raises(trio.ClosedResourceError):
            await asyncio.wait_for(waiting, 10)
        assert settled() == baseline

    run(main)


def test_a_frame_kept_for_the_next_receive_goes_with_the_block() -> None:
    """A frame the trio side received for a wait that was cancelled meanwhile is kept for the
    next receive (``_kept``); leaving the block releases it like a buffered one."""

    async def main() -> None:
        baseline = rtc.live_handles()
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track) as stream:
                    await source.capture_frame(numbered_frame(0))
                    await _buffered(stream, 1)
                    stream._kept.append(stream.receive_nowait())  # as a cancelled wait leaves it
        assert rtc.live_handles() == baseline  # no gc needed: nothing else holds the frame

    run(main)


def test_a_capture_that_must_wait_waits_in_trio_and_keeps_order() -> None:
    """With a 20 ms queue most captures find the previous one in flight: they wait in trio;
    the others are sent at once. Either way, frames arrive in order and complete."""
    count = 30

    async def main() -> None:
        async with rtc.open_audio_source(queue_size_ms=20) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, capacity=1000) as stream:  # silence between captures counts too
                    for i in range(count):
                        await source.capture_frame(numbered_frame(i))
                    await asyncio.wait_for(source.wait_for_playout(), 10)
                    got: list[rtc.AudioFrame] = []
                    while len(got) < count:
                        frame = await asyncio.wait_for(stream.receive(), 10)
                        if frame.data.any():  # a queued source plays silence while it is empty
                            got.append(frame)
        for i, frame in enumerate(got):
            np.testing.assert_array_equal(frame.data[:, 0], numbered_frame(i).data)

    run(main)


@pytest.mark.parametrize("seed", [1, 2])
def test_receives_cancelled_at_random_moments_lose_and_reorder_nothing(seed: int) -> None:
    """Task.cancel() at random moments of receive(): a frame received for a cancelled wait
    is kept for the next receive; every frame arrives once, in order."""
    frames = 600

    def index_of(frame: rtc.AudioFrame) -> int:
        return int((int(frame.data.reshape(-1)[0]) + 32768) // 7)

    async def main() -> None:
        rng = random.Random(seed)
        got: list[int] = []
        cancels = 0
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track, capacity=frames + 10) as stream:
                    async def produce() -> None:
                        for i in range(frames):
                            await source.capture_frame(numbered_frame(i))
                            await asyncio.sleep(rng.uniform(0, 0.002))

                    producer = asyncio.create_task(produce())
                    while len(got) < frames:
                        task = asyncio.create_task(stream.receive())
                        if rng.random() < 0.5:
                            await asyncio.sleep(rng.uniform(0, 0.0015))
                            task.cancel()
                        try:
                            frame = await asyncio.wait_for(task, 10)
                        except asyncio.CancelledError:
                            cancels += 1
                            continue
                        if frame.data.any():  # (a direct source sends no silence; to be sure)
                            got.append(index_of(frame))
                        del frame
                    await producer
        assert cancels > 0
        assert got == list(range(frames))

    run(main)
