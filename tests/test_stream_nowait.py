"""receive_nowait() and receive_batch() on frame streams: what is buffered, without waiting."""

from __future__ import annotations

import numpy as np
import pytest
import trio
import trio.testing

import rtc_trio as rtc
from tests.helpers import audio_loopback, numbered_frame

BOUND = 10.0


async def buffered(stream: rtc.AudioStream, count: int) -> None:
    """Wait (bounded) until ``count`` frames wait in ``stream``."""
    with trio.fail_after(BOUND):
        while stream.statistics().buffered < count:
            await trio.sleep(0.005)


def same(frame: rtc.AudioFrame, index: int) -> bool:
    return bool(np.array_equal(frame.data[:, 0], numbered_frame(index).data))


async def test_receive_nowait_gives_what_is_buffered_then_would_block() -> None:
    async with audio_loopback(capacity=8) as (source, _, stream):
        with pytest.raises(trio.WouldBlock):
            stream.receive_nowait()
        for i in range(3):
            await source.capture_frame(numbered_frame(i))
        await buffered(stream, 3)
        frames = [stream.receive_nowait() for _ in range(3)]
        assert [same(f, i) for i, f in enumerate(frames)] == [True] * 3
        with pytest.raises(trio.WouldBlock):
            stream.receive_nowait()
        del frames


async def test_receive_nowait_ends_with_end_of_channel_after_the_last_frame() -> None:
    async with audio_loopback(capacity=8) as (source, track, stream):
        await source.capture_frame(numbered_frame(0))
        await buffered(stream, 1)
        track.close()  # the stream ends natively, after the frame already buffered
        assert same(stream.receive_nowait(), 0)
        with trio.fail_after(BOUND):
            while True:
                try:
                    stream.receive_nowait()
                except trio.WouldBlock:
                    await trio.sleep(0.005)  # the end has not arrived yet
                except trio.EndOfChannel:
                    break
        with pytest.raises(trio.EndOfChannel):
            stream.receive_nowait()  # and stays ended


async def test_receive_nowait_on_a_closed_stream_raises_closed_resource_error() -> None:
    async with audio_loopback(capacity=8) as (source, _, stream):
        await source.capture_frame(numbered_frame(0))
        await buffered(stream, 1)
        await stream.aclose()
        with pytest.raises(trio.ClosedResourceError):
            stream.receive_nowait()  # the buffered frame went with the close


async def test_video_receive_nowait_would_block_then_closed() -> None:
    async with rtc.open_video_source(64, 48) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            async with rtc.open_video_stream(track) as stream:
                # a new video source sends black frames of its own, ten a second (measured):
                # wait for one, then drain what came meanwhile until nothing is buffered
                with trio.fail_after(BOUND):
                    await stream.receive()
                for _ in range(100):
                    try:
                        stream.receive_nowait()
                    except trio.WouldBlock:
                        break
                else:
                    pytest.fail("receive_nowait never found the stream empty")
                await stream.aclose()
                with pytest.raises(trio.ClosedResourceError):
                    stream.receive_nowait()


async def test_receive_batch_gives_every_buffered_frame_in_order_with_one_checkpoint() -> None:
    async with audio_loopback(capacity=32) as (source, _, stream):
        for i in range(10):
            await source.capture_frame(numbered_frame(i))
        await buffered(stream, 10)
        with trio.testing.assert_checkpoints():
            batch = await stream.receive_batch()
        assert len(batch) == 10 and all(same(f, i) for i, f in enumerate(batch))
        assert stream.statistics().buffered == 0
        del batch


async def test_receive_batch_takes_at_most_max_frames() -> None:
    async with audio_loopback(capacity=32) as (source, _, stream):
        for i in range(5):
            await source.capture_frame(numbered_frame(i))
        await buffered(stream, 5)
        first = await stream.receive_batch(max_frames=3)
        rest = await stream.receive_batch(max_frames=3)
        assert [len(first), len(rest)] == [3, 2]
        assert all(same(f, i) for i, f in enumerate(first + rest))
        del first, rest


async def test_receive_batch_waits_for_the_first_frame() -> None:
    async with audio_loopback(capacity=8) as (source, _, stream):
        got: list[rtc.AudioFrame] = []

        async def consume() -> None:
            got.extend(await stream.receive_batch())

        with trio.fail_after(BOUND):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await trio.testing.wait_all_tasks_blocked()
                assert got == []  # nothing buffered: it waits
                await source.capture_frame(numbered_frame(0))
        assert len(got) == 1 and same(got[0], 0)
        del got


async def test_receive_batch_returns_the_frames_before_the_end_then_raises_end_of_channel() -> None:
    async with audio_loopback(capacity=8) as (source, track, stream):
        for i in range(2):
            await source.capture_frame(numbered_frame(i))
        await buffered(stream, 2)
        track.close()
        with trio.fail_after(BOUND):
            while not stream._sub._ended:  # the end has come, behind the two frames
                await trio.sleep(0.005)
        frames = await stream.receive_batch()
        with pytest.raises(trio.EndOfChannel):
            await stream.receive_batch()
        assert len(frames) == 2 and all(same(f, i) for i, f in enumerate(frames))
        del frames


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                        (True, TypeError), ("3", TypeError), (1 << 21, ValueError)])
async def test_receive_batch_refuses_a_bad_max_frames_before_taking_anything(
        bad: object, error: type[Exception]) -> None:
    async with audio_loopback(capacity=8) as (source, _, stream):
        await source.capture_frame(numbered_frame(0))
        await buffered(stream, 1)
        with pytest.raises(error, match="max_frames"):
            await stream.receive_batch(bad)  # type: ignore[arg-type]
        assert stream.statistics().buffered == 1
