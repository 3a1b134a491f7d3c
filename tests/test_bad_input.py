"""Bad arguments raise clear errors before anything native happens, and lose nothing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from tests.helpers import audio_loopback, numbered_frame

RGBA = rtc.VideoBufferType.RGBA


@pytest.mark.parametrize(
    "data, rate, error, words",
    [
        ([1, 2, 3], 48000, TypeError, "numpy int16 array"),
        (np.zeros(480, np.float32), 48000, TypeError, "dtype int16"),
        (np.zeros((2, 2, 2), np.int16), 48000, ValueError, "shape"),
        (np.zeros(0, np.int16), 48000, ValueError, "no samples"),
        (np.zeros((480, 0), np.int16), 48000, ValueError, "num_channels"),
        (np.zeros(480, np.int16), 0, ValueError, "sample_rate"),
        (np.zeros(480, np.int16), -8000, ValueError, "sample_rate"),
        (np.zeros(480, np.int16), 48000.0, TypeError, "sample_rate"),
        (np.zeros(480, np.int16), True, TypeError, "sample_rate"),
    ],
)
def test_audio_frame_validation(data: Any, rate: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        rtc.AudioFrame(data, rate)


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((10, 10, RGBA, np.zeros(399, np.uint8)), ValueError, "400 bytes"),
        ((10, 10, RGBA, np.zeros(400, np.int8)), TypeError, "uint8"),
        ((10, 10, RGBA, bytes(400)), TypeError, "numpy uint8 array"),
        ((10, 10, RGBA, np.zeros((20, 20), np.uint8)[:, :20:2].copy().T), ValueError, "C-contiguous"),
        ((0, 10, RGBA, np.zeros(0, np.uint8)), ValueError, "width"),
        ((10, -1, RGBA, np.zeros(400, np.uint8)), ValueError, "height"),
        ((10.0, 10, RGBA, np.zeros(400, np.uint8)), TypeError, "width"),
        ((10, 10, 42, np.zeros(400, np.uint8)), ValueError, "VideoBufferType"),
        ((10, 10, "RGBA", np.zeros(400, np.uint8)), TypeError, "VideoBufferType"),
        ((3, 3, rtc.VideoBufferType.I420, np.zeros(9, np.uint8)), ValueError, "17 bytes"),
    ],
)
def test_video_frame_validation(args: Any, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        rtc.VideoFrame(*args)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"sample_rate": 0}, ValueError, "sample_rate"),
        ({"num_channels": 0}, ValueError, "num_channels"),
        ({"num_channels": 99}, ValueError, "num_channels"),
        ({"queue_size_ms": 15}, ValueError, "multiple of 10"),
        ({"queue_size_ms": -10}, ValueError, "multiple of 10"),
        ({"queue_size_ms": "100"}, TypeError, "queue_size_ms"),
    ],
)
async def test_open_audio_source_validation(kwargs: Any, error: type[Exception], words: str) -> None:
    before = rtc.live_handles()
    with pytest.raises(error, match=words):
        async with rtc.open_audio_source(**kwargs):
            pass
    assert rtc.live_handles() == before


async def test_open_video_source_validation() -> None:
    with pytest.raises(ValueError, match="width"):
        async with rtc.open_video_source(0, 10):
            pass
    with pytest.raises(TypeError, match="height"):
        async with rtc.open_video_source(10, None):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"sample_rate": 0}, ValueError, "sample_rate"),
        ({"num_channels": 0}, ValueError, "num_channels"),
        ({"frame_size_ms": 0}, ValueError, "frame_size_ms"),
        ({"frame_size_ms": 2.5}, TypeError, "frame_size_ms"),
        ({"capacity": 0}, ValueError, "capacity"),
        ({"capacity": None}, TypeError, "capacity"),
    ],
)
async def test_open_audio_stream_validation(kwargs: Any, error: type[Exception], words: str) -> None:
    async with rtc.open_audio_source() as source:
        with rtc.LocalAudioTrack.create("mic", source) as track:
            before = rtc.live_handles()
            with pytest.raises(error, match=words):
                async with rtc.open_audio_stream(track, **kwargs):
                    pass
            assert rtc.live_handles() == before


async def test_streams_refuse_the_wrong_kind_of_track_or_object() -> None:
    async with rtc.open_audio_source() as source, rtc.open_video_source(16, 16) as vsource:
        with rtc.LocalAudioTrack.create("mic", source) as track, rtc.LocalVideoTrack.create("cam", vsource) as vtrack:
            with pytest.raises(TypeError, match="not a video track"):
                async with rtc.open_video_stream(track):
                    pass
            with pytest.raises(TypeError, match="not an audio track"):
                async with rtc.open_audio_stream(vtrack):
                    pass
            with pytest.raises(TypeError, match="takes a track"):
                async with rtc.open_audio_stream("mic"):  # type: ignore[arg-type]
                    pass
            with pytest.raises(ValueError, match="VideoBufferType"):
                async with rtc.open_video_stream(vtrack, format=99):  # type: ignore[arg-type]
                    pass
        with pytest.raises(TypeError, match="AudioSource"):
            rtc.LocalAudioTrack.create("mic", vsource)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="name"):
            rtc.LocalAudioTrack.create(3, source)  # type: ignore[arg-type]


async def test_bad_captures_are_refused_and_lose_nothing_queued() -> None:
    async with audio_loopback(capacity=50) as (source, _, stream):
        await source.capture_frame(numbered_frame(0))
        with pytest.raises(ValueError, match="1 channel"):
            await source.capture_frame(numbered_frame(1, channels=2))
        with pytest.raises(ValueError, match="48000 Hz"):
            await source.capture_frame(numbered_frame(1, samples=160, rate=16000))
        with pytest.raises(ValueError, match="10 ms frames"):
            await source.capture_frame(numbered_frame(1, samples=960))
        with pytest.raises(TypeError, match="AudioFrame"):
            await source.capture_frame(np.zeros(480, np.int16))  # type: ignore[arg-type]
        await source.capture_frame(numbered_frame(1))
        with trio.fail_after(5):
            first, second = await stream.receive(), await stream.receive()
    np.testing.assert_array_equal(first.data[:, 0], numbered_frame(0).data)
    np.testing.assert_array_equal(second.data[:, 0], numbered_frame(1).data)


async def test_bad_video_captures_are_refused() -> None:
    async with rtc.open_video_source(16, 16) as source:
        frame = rtc.VideoFrame(16, 16, RGBA, np.zeros(16 * 16 * 4, np.uint8))
        with pytest.raises(TypeError, match="VideoFrame"):
            source.capture_frame(np.zeros(1024, np.uint8))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="negative"):
            source.capture_frame(frame, timestamp_us=-1)
        with pytest.raises(ValueError, match="rotation"):
            source.capture_frame(frame, rotation=45)
        source.capture_frame(frame)
    with pytest.raises(trio.ClosedResourceError):
        source.capture_frame(frame)


def test_convert_validates_its_target() -> None:
    frame = rtc.VideoFrame(4, 4, RGBA, np.zeros(64, np.uint8))
    with pytest.raises(ValueError, match="VideoBufferType"):
        frame.convert(77)  # type: ignore[arg-type]


async def test_a_frame_changed_after_it_was_made_is_checked_again_at_capture() -> None:
    def int8(frame: rtc.AudioFrame) -> None:
        frame.data = np.zeros(480, np.int8)  # type: ignore[assignment]

    def retyped(frame: rtc.AudioFrame) -> None:
        frame.data.dtype = np.dtype(np.int8)  # same bytes, twice the "samples"

    def emptied(frame: rtc.AudioFrame) -> None:
        frame.data = np.zeros(0, np.int16)

    def strided(frame: rtc.AudioFrame) -> None:
        frame.data = np.zeros(960, np.int16)[::2]

    async with rtc.open_audio_source(48000, 1, queue_size_ms=100) as source:
        for change, error in ((int8, TypeError), (retyped, TypeError), (emptied, ValueError),
                              (strided, ValueError)):
            frame = rtc.AudioFrame(np.zeros(480, np.int16), 48000)
            change(frame)
            with pytest.raises(error):
                await source.capture_frame(frame)
        await source.capture_frame(rtc.AudioFrame(np.zeros(480, np.int16), 48000))  # still usable


def test_video_encoding_limits_go_together() -> None:
    for one in ({"video_max_bitrate": 2_000_000}, {"video_max_framerate": 30.0}):
        with pytest.raises(ValueError, match="go together"):
            rtc.TrackPublishOptions(**one)  # type: ignore[arg-type]
    rtc.TrackPublishOptions(video_max_bitrate=2_000_000, video_max_framerate=30.0)
