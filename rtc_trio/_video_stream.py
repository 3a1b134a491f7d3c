"""VideoStream: the pictures a track shows, as zero-copy VideoFrames."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, final


from rtc_trio import _handles, _native, _router
from rtc_trio._proto import video_frame_pb2
from rtc_trio._stream import MAX_VIDEO_CAPACITY, FrameStream, check_capacity, native_backlog
from rtc_trio._stream_follow import (
    REJOIN_GRACE, FollowableParticipant, check_stream_source, open_frame_stream,
)
from rtc_trio._track import Track, TrackKind, TrackSource
from rtc_trio._video_frame import VideoBufferType, VideoFrame, as_buffer_type

DEFAULT_VIDEO_CAPACITY = 4
"""Frames buffered per stream: about 130 ms at 30 fps (15 MB at 1280x720 RGBA). Video is
consumed live: a consumer that falls further behind gets the newest pictures, not old ones."""


STREAM_FORMATS = (
    VideoBufferType.RGBA, VideoBufferType.ABGR, VideoBufferType.ARGB, VideoBufferType.BGRA,
    VideoBufferType.RGB24, VideoBufferType.I420,
)
"""The formats a stream delivers. The native stream converts each picture with the
converter of :meth:`VideoFrame.convert`, from I420 (what remote tracks decode to, and what
a local track carries after ``capture_frame``): to I420A, I422, I444, I010 or NV12 it has no
conversion, and such a stream delivered nothing, logging an error per picture."""


NATIVE_VIDEO_BACKLOG = 16
"""Floor of the native queue, before conversion: 16 frames (22 MB of I420 at 1280x720)."""


@final
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
    track: Track | None = None,
    *,
    participant: FollowableParticipant | None = None,
    track_source: TrackSource | None = None,
    rejoin_grace: float = REJOIN_GRACE,
    format: VideoBufferType = VideoBufferType.RGBA,
    capacity: int = DEFAULT_VIDEO_CAPACITY,
) -> AsyncIterator[VideoStream]:
    """Receive the pictures of ``track``, converted natively to ``format``.

    Or, with ``participant=`` and ``track_source=`` instead of a track, the pictures of that
    remote participant's track of that source, followed by identity as
    :func:`open_audio_stream` does (``rejoin_grace``). Nothing of the stream outlives the
    block: leaving it stops the native stream and releases every frame still buffered.

    Supported (the README's "Supported values"): ``format`` RGBA, ABGR, ARGB, BGRA, RGB24 or I420 (convert
    the frames for another type); ``capacity`` 1 to 30 frames. A local track's pictures
    arrive cropped to multiples of 4 pixels (1282x722 arrives as 1280x720).
    """
    who, grace = check_stream_source("open_video_stream", track, participant, track_source,
                                     TrackKind.VIDEO, rejoin_grace)
    kind = as_buffer_type(format, "format")
    if kind not in STREAM_FORMATS:
        names = ", ".join(t.name for t in STREAM_FORMATS)
        raise ValueError(f"open_video_stream delivers {names}, not {kind.name}; convert() its frames")
    capacity = check_capacity(capacity, MAX_VIDEO_CAPACITY)

    def configure(new: video_frame_pb2.NewVideoStreamRequest) -> None:
        new.type = video_frame_pb2.VideoStreamType.VIDEO_STREAM_NATIVE
        new.format = kind.value  # type: ignore[assignment]
        new.normalize_stride = True
        new.queue_size_frames = native_backlog(capacity, NATIVE_VIDEO_BACKLOG)

    async with open_frame_stream(
        track, who, track_source, ("new_video_stream", "video_stream_from_participant"),
        configure, capacity, lambda sub, handle: VideoStream(sub, handle, kind), grace,
    ) as stream:
        yield stream


@_native.on_event("video_stream_event")
def _on_video_stream_event(event: video_frame_pb2.VideoStreamEvent) -> None:
    if event.WhichOneof("message") == "frame_received":
        received = event.frame_received
        _router.deliver(event.stream_handle, received, _handles.acquire(received.buffer.handle.id))
    else:
        _router.end(event.stream_handle)
