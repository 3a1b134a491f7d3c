"""Video through source -> local track -> stream, and the native converter."""

from __future__ import annotations

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from rtc_trio._video_frame import frame_size

W, H = 320, 240


async def first_captured(stream: rtc.VideoStream) -> rtc.VideoFrame:
    """The first frame that is not black: a new native source sends black keepalive frames
    (10 fps) until its first capture, and one of those may reach a stream opened early."""
    async for frame in stream:
        if frame.convert(rtc.VideoBufferType.RGBA).data[..., :3].max() > 0:
            return frame
    raise AssertionError("the stream ended before the captured frame arrived")


def solid_rgba(width: int, height: int, rgb: tuple[int, int, int]) -> rtc.VideoFrame:
    data = np.empty((height, width, 4), np.uint8)
    data[..., :3] = rgb
    data[..., 3] = 255
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, data)


@pytest.mark.parametrize("size", [(W, H), (1280, 720)])
async def test_round_trip_keeps_size_and_colour(size: tuple[int, int]) -> None:
    width, height = size
    colour = (200, 40, 120)
    async with rtc.open_video_source(width, height) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            async with rtc.open_video_stream(track, format=rtc.VideoBufferType.RGBA) as stream:
                with trio.fail_after(10):
                    for i in range(3):
                        source.capture_frame(solid_rgba(width, height, colour), timestamp_us=i * 33_333)
                    frame = await first_captured(stream)
    assert (frame.width, frame.height, frame.type) == (width, height, rtc.VideoBufferType.RGBA)
    assert frame.data.shape == (height, width, 4)
    mean = frame.data[..., :3].reshape(-1, 3).mean(axis=0)
    assert np.all(np.abs(mean - colour) <= 6), mean  # RGBA -> I420 -> RGBA loses a little


async def test_stream_delivers_the_requested_format() -> None:
    async with rtc.open_video_source(W, H) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            async with rtc.open_video_stream(track, format=rtc.VideoBufferType.I420) as stream:
                source.capture_frame(solid_rgba(W, H, (10, 200, 30)))
                with trio.fail_after(10):
                    frame = await first_captured(stream)
    assert frame.type == rtc.VideoBufferType.I420
    assert frame.data.nbytes == frame_size(rtc.VideoBufferType.I420, W, H)
    y, u, v = frame.planes()
    assert y.shape == (H, W) and u.shape == (H // 2, W // 2) and v.shape == (H // 2, W // 2)


@pytest.mark.parametrize("target", list(rtc.VideoBufferType))
def test_convert_from_rgba_to_every_type_and_back(target: rtc.VideoBufferType) -> None:
    frame = solid_rgba(W, H, (90, 160, 220))
    try:
        converted = frame.convert(target)
    except (rtc.RtcError, ValueError) as error:  # a pair the native converter lacks must say so clearly
        assert target.name in str(error)
        return
    assert converted.type == target
    assert converted.data.nbytes == frame_size(target, W, H)
    assert len(converted.planes()) in (1, 2, 3, 4)
    try:
        back = converted.convert(rtc.VideoBufferType.RGBA)
    except (rtc.RtcError, ValueError) as error:
        assert "RGBA" in str(error)
        return
    mean = back.data[..., :3].reshape(-1, 3).mean(axis=0)
    assert np.all(np.abs(mean - (90, 160, 220)) <= 8), mean


def test_converted_frames_are_native_views_released_with_their_last_array() -> None:
    before = rtc.live_handles()
    converted = solid_rgba(W, H, (1, 2, 3)).convert(rtc.VideoBufferType.I420)
    assert rtc.live_handles() == before + 1
    plane = converted.planes()[0]
    del converted
    assert rtc.live_handles() == before + 1  # the plane view still holds the buffer
    del plane
    assert rtc.live_handles() == before


async def test_slow_video_consumer_drops_oldest() -> None:
    async with rtc.open_video_source(W, H) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            async with rtc.open_video_stream(track, capacity=2) as stream:
                source.capture_frame(solid_rgba(W, H, (1, 1, 1)))  # ends the black keepalive
                with trio.fail_after(10):
                    await first_captured(stream)
                while True:  # a keepalive frame sent just before the capture may trail it
                    with trio.move_on_after(0.3):
                        await stream.receive()
                        continue
                    break
                for i in range(12):
                    source.capture_frame(solid_rgba(W, H, (i * 20, 0, 0)))
                with trio.fail_after(10):
                    while stream.dropped + 2 < 12:
                        await trio.sleep(0.01)
                last = None
                for _ in range(2):
                    last = await stream.receive()
    assert stream.dropped == 10
    assert last is not None and abs(int(last.data[..., 0].mean()) - 220) <= 6
