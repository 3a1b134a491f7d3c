"""VideoStream: the pictures a track shows, as zero-copy VideoFrames."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from rtc_trio import _handles, _native, _router
from rtc_trio._proto import ffi_pb2, video_frame_pb2
from rtc_trio._stream import FrameStream, check_capacity, create_stream
from rtc_trio._track import Track, TrackKind
from rtc_trio._video_frame import VideoBufferType, VideoFrame, as_buffer_type

DEFAULT_VIDEO_CAPACITY = 4
"""Frames buffered per stream: about 130 ms at 30 fps (15 MB at 1280x720 RGBA). Video is
consumed live: a consumer that falls further behind gets the newest pictures, not old ones."""


class VideoStream(FrameStream[VideoFrame]):
    """Iterate it to receive :class:`VideoFrame` objects; see :func:`open_video_stream`."""

    def __init__(self, sub: _router.Subscription[video_frame_pb2.VideoFrameReceived],
                 handle: _handles.NativeHandle, format: VideoBufferType) -> None:
        super().__init__(sub, handle)
        self.format = format

    def _frame(self, item: video_frame_pb2.VideoFrameReceived) -> VideoFrame:
        return VideoFrame._view(item.buffer.info, item.buffer.handle.id, item.timestamp_us)


@asynccontextmanager
async def open_video_stream(
    track: Track,
    *,
    format: VideoBufferType = VideoBufferType.RGBA,
    capacity: int = DEFAULT_VIDEO_CAPACITY,
) -> AsyncIterator[VideoStream]:
    """Receive the pictures of ``track``, converted natively to ``format``.

    Nothing of the stream outlives the block: leaving it stops the native stream and
    releases every frame still buffered.
    """
    if not isinstance(track, Track):
        raise TypeError(f"open_video_stream takes a track, not {type(track).__name__}")
    if track.kind != TrackKind.VIDEO:
        raise TypeError(f"{track!r} is not a video track")
    kind = as_buffer_type(format)
    capacity = check_capacity(capacity)
    track._check_open()
    await trio.lowlevel.checkpoint()
    track._check_open()
    req = ffi_pb2.FfiRequest()
    new = req.new_video_stream
    new.track_handle = track._handle.id
    new.type = video_frame_pb2.VideoStreamType.VIDEO_STREAM_NATIVE
    new.format = kind.value  # type: ignore[assignment]
    new.normalize_stride = True
    new.queue_size_frames = 0  # unbounded natively: the bound users see is ours
    sub, handle = create_stream(req, capacity)
    stream = VideoStream(sub, handle, kind)
    try:
        yield stream
    finally:
        stream._close()


@_native.on_event("video_stream_event")
def _on_video_stream_event(event: video_frame_pb2.VideoStreamEvent) -> None:
    if event.WhichOneof("message") == "frame_received":
        received = event.frame_received
        _router.deliver(event.stream_handle, received, _handles.acquire(received.buffer.handle.id))
    else:
        _router.end(event.stream_handle)
