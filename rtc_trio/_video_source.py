"""VideoSource: pushes pictures into the native video pipeline."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from rtc_trio import _native, _validate
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2, video_frame_pb2
from rtc_trio._video_frame import VideoBufferType, VideoFrame, check_dimensions

_ROTATIONS = {0: 0, 90: 1, 180: 2, 270: 3}
MAX_TIMESTAMP_US = 2**63 - 1

MIN_CAPTURE_DIMENSION = 4
"""Smallest width and height of a source and of a captured frame. A local track's pictures
reach its streams cropped to multiples of 4 pixels (1282x722 arrives as 1280x720); narrower
ones would be cropped to nothing and libwebrtc aborts the process (``Check failed: width > 0``,
measured for every size from 1x1 to 33x3). A source's own size matters too: until its first
capture it sends black frames of that size."""

CAPTURED_AS_I420 = frozenset(
    {VideoBufferType.I422, VideoBufferType.I444, VideoBufferType.I010, VideoBufferType.NV12}
)
"""Types :meth:`VideoSource.capture_frame` converts to I420 before handing them over (a copy):
the native capture of I010 and NV12 aborts the process once a stream reads the track, and
I422/I444 pictures reach streams of some formats not at all (BGRA, RGB24, ABGR, ...)."""


class VideoSource:
    """A native video source; create it with :func:`open_video_source`.

    ``capture_frame`` takes frames of every :class:`VideoBufferType`, at least 4x4 pixels;
    I422, I444, I010 and NV12 frames are converted to I420 first. Streams of a local track
    receive its pictures cropped to multiples of 4 pixels.
    """

    def __init__(self, handle: NativeHandle, width: int, height: int) -> None:
        self._handle = handle
        self.width = width
        self.height = height

    def capture_frame(self, frame: VideoFrame, *, timestamp_us: int = 0, rotation: int = 0) -> None:
        """Hand ``frame`` to the tracks of this source (the native side copies it at once)."""
        if self._handle.released:
            raise trio.ClosedResourceError("this video source is closed")
        if not isinstance(frame, VideoFrame):
            raise TypeError(f"capture_frame takes a VideoFrame, not {type(frame).__name__}")
        timestamp_us = _validate.integer("timestamp_us", timestamp_us, 0, MAX_TIMESTAMP_US)
        rotation = _validate.choice("rotation", rotation, _ROTATIONS)
        frame._check()
        if min(frame.width, frame.height) < MIN_CAPTURE_DIMENSION:
            raise ValueError(
                f"capture_frame takes frames of at least {MIN_CAPTURE_DIMENSION}x"
                f"{MIN_CAPTURE_DIMENSION} pixels, not {frame.width}x{frame.height}"
            )
        if frame.type in CAPTURED_AS_I420:
            frame = frame.convert(VideoBufferType.I420)
        req = ffi_pb2.FfiRequest()
        capture = req.capture_video_frame
        capture.source_handle = self._handle.id
        capture.timestamp_us = timestamp_us
        capture.rotation = _ROTATIONS[rotation]  # type: ignore[assignment]
        frame._buffer_info(capture.buffer)
        _native.request_discard(req)


@asynccontextmanager
async def open_video_source(
    width: int, height: int, *, is_screencast: bool = False
) -> AsyncIterator[VideoSource]:
    """A :class:`VideoSource` of nominal size ``width`` x ``height`` that lives until the block ends.

    Each side from 4 to 16384 pixels, at most 4096x4096 pixels in all (the README's "Supported values").
    """
    width, height = check_dimensions(width, height, least=MIN_CAPTURE_DIMENSION)
    is_screencast = _validate.boolean("is_screencast", is_screencast)
    await trio.lowlevel.checkpoint()
    req = ffi_pb2.FfiRequest()
    new = req.new_video_source
    new.type = video_frame_pb2.VideoSourceType.VIDEO_SOURCE_NATIVE
    new.resolution.width = width
    new.resolution.height = height
    new.is_screencast = is_screencast
    handle = NativeHandle(_native.request(req).new_video_source.source.handle.id)
    try:
        yield VideoSource(handle, width, height)
    finally:
        handle.release()
