"""VideoSource: pushes pictures into the native video pipeline."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from rtc_trio import _native
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2, video_frame_pb2
from rtc_trio._video_frame import VideoFrame, check_dimensions

_ROTATIONS = {0: 0, 90: 1, 180: 2, 270: 3}


class VideoSource:
    """A native video source; create it with :func:`open_video_source`."""

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
        if isinstance(timestamp_us, bool) or not isinstance(timestamp_us, int):
            raise TypeError(f"timestamp_us must be an int, not {type(timestamp_us).__name__}")
        if timestamp_us < 0:
            raise ValueError(f"timestamp_us must not be negative, got {timestamp_us}")
        if rotation not in _ROTATIONS:
            raise ValueError(f"rotation must be 0, 90, 180 or 270, got {rotation!r}")
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
    """A :class:`VideoSource` of nominal size ``width`` x ``height`` that lives until the block ends."""
    check_dimensions(width, height)
    await trio.lowlevel.checkpoint()
    req = ffi_pb2.FfiRequest()
    new = req.new_video_source
    new.type = video_frame_pb2.VideoSourceType.VIDEO_SOURCE_NATIVE
    new.resolution.width = width
    new.resolution.height = height
    new.is_screencast = bool(is_screencast)
    handle = NativeHandle(_native.request(req).new_video_source.source.handle.id)
    try:
        yield VideoSource(handle, int(width), int(height))
    finally:
        handle.release()
