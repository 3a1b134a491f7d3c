"""Streams are trio receive channels: receive(), async for, aclose(), statistics()."""

from __future__ import annotations

import pytest
import trio

import rtc_trio as rtc
from tests.helpers import audio_loopback, numbered_frame


async def _first_of(channel: trio.abc.ReceiveChannel[rtc.AudioFrame]) -> rtc.AudioFrame:
    """Code written for any trio receive channel."""
    async with channel:
        async for item in channel:
            return item
    raise AssertionError("the channel ended")


async def test_a_stream_works_where_any_trio_receive_channel_does() -> None:
    async with audio_loopback() as (source, _, stream):
        assert isinstance(stream, trio.abc.ReceiveChannel)
        await source.capture_frame(numbered_frame(5))
        with trio.fail_after(5):
            frame = await _first_of(stream)  # which closes it on the way out
        assert (frame.data[:, 0] == numbered_frame(5).data).all()
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive()
        await stream.aclose()  # twice is harmless, and so is the block's own close after it


async def test_aclose_wakes_a_blocked_reader_and_releases_buffered_frames() -> None:
    async with audio_loopback(capacity=10) as (source, _, stream):
        base = rtc.live_handles()
        for i in range(3):
            await source.capture_frame(numbered_frame(i))
        with trio.fail_after(5):
            while stream.statistics().buffered < 3:
                await trio.sleep(0.01)
        assert rtc.live_handles() == base + 3
        await stream.aclose()
        assert rtc.live_handles() == base - 1  # the frames and the stream itself


async def test_statistics_report_buffered_capacity_and_dropped() -> None:
    async with audio_loopback(capacity=4) as (source, _, stream):
        assert stream.statistics() == rtc.StreamStatistics(buffered=0, capacity=4, dropped=0)
        for i in range(10):
            await source.capture_frame(numbered_frame(i))
        with trio.fail_after(5):
            while stream.statistics().dropped < 6:
                await trio.sleep(0.01)
        assert stream.statistics() == rtc.StreamStatistics(buffered=4, capacity=4, dropped=6)
        await stream.receive()
        assert stream.statistics().buffered == 3
