"""AudioStream: the frames a track plays, as zero-copy AudioFrames."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import trio

from rtc_trio import _handles, _native, _router
from rtc_trio._audio_frame import AudioFrame, check_rate_and_channels
from rtc_trio._proto import audio_frame_pb2, ffi_pb2
from rtc_trio._stream import FrameStream, check_capacity, create_stream
from rtc_trio._track import Track, TrackKind

DEFAULT_AUDIO_CAPACITY = 100
"""Frames buffered per stream: 1 s of 10 ms frames (190 KB at 48 kHz stereo). Enough to ride
out a garbage-collection pause or a slow consumer step without loss; small enough that a
consumer that stalls for longer hears fresh audio, not a backlog, once it resumes."""


class AudioStream(FrameStream[AudioFrame]):
    """Iterate it to receive :class:`AudioFrame` objects; see :func:`open_audio_stream`."""

    def __init__(self, sub: _router.Subscription[audio_frame_pb2.OwnedAudioFrameBuffer],
                 handle: _handles.NativeHandle, sample_rate: int, num_channels: int) -> None:
        super().__init__(sub, handle)
        self.sample_rate = sample_rate
        self.num_channels = num_channels

    def _frame(self, item: audio_frame_pb2.OwnedAudioFrameBuffer) -> AudioFrame:
        return AudioFrame._view(item.info, item.handle.id)


@asynccontextmanager
async def open_audio_stream(
    track: Track,
    *,
    sample_rate: int = 48000,
    num_channels: int = 1,
    frame_size_ms: int | None = None,
    capacity: int = DEFAULT_AUDIO_CAPACITY,
) -> AsyncIterator[AudioStream]:
    """Receive the audio of ``track``, resampled and remixed to ``sample_rate``/``num_channels``.

    ``frame_size_ms`` sets the length of each frame (native 10 ms frames when None). Nothing
    of the stream outlives the block: leaving it stops the native stream and releases every
    frame still buffered.
    """
    if not isinstance(track, Track):
        raise TypeError(f"open_audio_stream takes a track, not {type(track).__name__}")
    if track.kind != TrackKind.AUDIO:
        raise TypeError(f"{track!r} is not an audio track")
    check_rate_and_channels(sample_rate, num_channels)
    if frame_size_ms is not None:
        if isinstance(frame_size_ms, bool) or not isinstance(frame_size_ms, int):
            raise TypeError(f"frame_size_ms must be an int or None, not {type(frame_size_ms).__name__}")
        if not 1 <= frame_size_ms <= 10_000:
            raise ValueError(f"frame_size_ms must be between 1 and 10000, got {frame_size_ms}")
    capacity = check_capacity(capacity)
    track._check_open()
    await trio.lowlevel.checkpoint()
    track._check_open()
    req = ffi_pb2.FfiRequest()
    new = req.new_audio_stream
    new.track_handle = track._handle.id
    new.type = audio_frame_pb2.AudioStreamType.AUDIO_STREAM_NATIVE
    new.sample_rate = sample_rate
    new.num_channels = num_channels
    new.queue_size_frames = 0  # unbounded natively: the bound users see is ours
    if frame_size_ms is not None:
        new.frame_size_ms = frame_size_ms
    sub, handle = create_stream(req, capacity)
    stream = AudioStream(sub, handle, int(sample_rate), int(num_channels))
    try:
        yield stream
    finally:
        stream._close()


@_native.on_event("audio_stream_event")
def _on_audio_stream_event(event: audio_frame_pb2.AudioStreamEvent) -> None:
    if event.WhichOneof("message") == "frame_received":
        owned = event.frame_received.frame
        _router.deliver(event.stream_handle, owned, _handles.acquire(owned.handle.id))
    else:
        _router.end(event.stream_handle)
