"""AudioStream: the frames a track plays, as zero-copy AudioFrames."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, final

import trio

from rtc_trio import _handles, _native, _router
from rtc_trio._audio_frame import AudioFrame, valid_buffer_info
from rtc_trio._ffi import ffi, lib
from rtc_trio._proto import audio_frame_pb2
from rtc_trio._stream import FrameStream, check_audio_stream, native_backlog
from rtc_trio._stream_follow import (
    REJOIN_GRACE, FollowableParticipant, check_stream_source, open_frame_stream,
)
from rtc_trio._track import Track, TrackKind, TrackSource

DEFAULT_AUDIO_CAPACITY = 100
"""Frames buffered per stream: 1 s of 10 ms frames (190 KB at 48 kHz stereo). Enough to ride
out a garbage-collection pause or a slow consumer step without loss; small enough that a
consumer that stalls for longer hears fresh audio, not a backlog, once it resumes."""


NATIVE_AUDIO_BACKLOG = 1000
"""Floor of the native queue: 10 s of 10 ms frames (about 1 MB mono), so bursts never drop."""


@final
class AudioStream(FrameStream[AudioFrame]):
    """Iterate it to receive :class:`AudioFrame` objects; see :func:`open_audio_stream`.

    Frames wait in a native ring of ``capacity`` frames, filled on the native threads without
    the GIL; frames that arrived before the ring existed come first, from the router. A
    consumer that finds the ring empty waits on the ring's eventfd, which the next frame (or
    the end of the stream) makes readable.
    """

    def __init__(self, sub: _router.Subscription[audio_frame_pb2.OwnedAudioFrameBuffer],
                 handle: _handles.NativeHandle, sample_rate: int, num_channels: int) -> None:
        super().__init__(sub, handle)
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self._slot = ffi.new("rtc_audio_frame *")
        try:
            self._adopt(handle, sub.capacity)
        except BaseException:
            super()._close()
            raise

    def _adopt(self, handle: _handles.NativeHandle, capacity: int) -> None:
        opened = lib.rtc_ring_open(handle.id, capacity, self._wake_fd)
        if opened != lib.RTC_OPENED:
            if opened == lib.RTC_NO_MEMORY:
                raise MemoryError(f"no memory for a frame ring of {capacity} frames")
            if opened == lib.RTC_EXISTS:
                raise RuntimeError(f"audio stream {handle.id} already has a frame ring")
            raise ValueError(f"no frame ring of capacity {capacity}")

    def _retire(self) -> None:
        self._close_ring(count_buffered=True)
        super()._retire()

    def _close_ring(self, count_buffered: bool = False) -> None:
        if not self._handle.released:
            self._retired_dropped += int(lib.rtc_ring_dropped(self._handle.id))
            if count_buffered:
                self._retired_dropped += int(lib.rtc_ring_count(self._handle.id))
        lib.rtc_ring_close(self._handle.id)  # from here on nothing native writes to the fd

    def _native_dropped(self) -> int:
        if self._handle.released:
            return self._sub.dropped
        return self._sub.dropped + int(lib.rtc_ring_dropped(self._handle.id))

    def _native_buffered(self) -> int:
        return self._sub.buffered() + int(lib.rtc_ring_count(self._handle.id))

    def _frame(self, item: audio_frame_pb2.OwnedAudioFrameBuffer) -> AudioFrame:
        return AudioFrame._view(item.info, item.handle.id)

    def _pop(self) -> AudioFrame | None:
        """Frames parked before the ring existed, then the ring's; the end after both."""
        try:
            return self._frame(self._sub.receive_nowait())
        except trio.WouldBlock:
            ended = False
        except trio.EndOfChannel:
            ended = True
        if lib.rtc_ring_pop(self._handle.id, self._slot):
            return AudioFrame._view(self._slot, _handles.acquire(self._slot.handle))
        if ended:
            raise trio.EndOfChannel
        return None

    def _park(self) -> bool:
        # the end of the stream arrives through the router, frames through the native ring
        return self._sub.park_on_fd() and not lib.rtc_ring_park(self._handle.id)

    def _close(self) -> None:
        self._close_ring()
        super()._close()


@asynccontextmanager
async def open_audio_stream(
    track: Track | None = None,
    *,
    participant: FollowableParticipant | None = None,
    track_source: TrackSource | None = None,
    rejoin_grace: float = REJOIN_GRACE,
    sample_rate: int = 48000,
    num_channels: int = 1,
    frame_size_ms: int | None = None,
    capacity: int = DEFAULT_AUDIO_CAPACITY,
) -> AsyncIterator[AudioStream]:
    """Receive the audio of ``track``, resampled and remixed to ``sample_rate``/``num_channels``.

    Or, with ``participant=`` and ``track_source=`` instead of a track, the audio of that
    remote participant's track of that source, followed by identity: across re-publishes, the
    room's reconnections, and a leave and rejoin under the same identity. The stream ends once
    the participant has been gone for ``rejoin_grace`` seconds (10 by default; ``math.inf``:
    only with the room), when the room disconnects, or with the block.
    ``frame_size_ms`` sets the length of each frame (native
    10 ms frames when None). Nothing of the stream outlives the block: leaving it stops the
    native stream and releases every frame still buffered.

    Supported (the README's "Supported values"): 8000 to 384,000 Hz, 1 to 16 channels, at most 768,000
    samples a second in all; ``frame_size_ms`` 1 to 10,000; ``capacity`` frames of at most
    128 MiB together (139,810 frames of 10 ms at 48 kHz mono). Asked for more channels than
    the track has, the native remixer decides the count: read ``frame.num_channels``.
    """
    who, grace = check_stream_source("open_audio_stream", track, participant, track_source,
                                     TrackKind.AUDIO, rejoin_grace)
    sample_rate, num_channels, frame_size_ms, capacity = check_audio_stream(
        sample_rate, num_channels, frame_size_ms, capacity)

    def configure(new: audio_frame_pb2.NewAudioStreamRequest) -> None:
        new.type = audio_frame_pb2.AudioStreamType.AUDIO_STREAM_NATIVE
        new.sample_rate = sample_rate
        new.num_channels = num_channels
        new.queue_size_frames = native_backlog(capacity, NATIVE_AUDIO_BACKLOG)
        if frame_size_ms is not None:
            new.frame_size_ms = frame_size_ms

    async with open_frame_stream(
        track, who, track_source, ("new_audio_stream", "audio_stream_from_participant"),
        configure, capacity, lambda sub, handle: AudioStream(sub, handle, sample_rate, num_channels),
        grace,
    ) as stream:
        yield stream


@_native.on_event("audio_stream_event")
def _on_audio_stream_event(event: audio_frame_pb2.AudioStreamEvent) -> None:
    if event.WhichOneof("message") == "frame_received":
        owned = event.frame_received.frame
        if not (owned.handle.id and valid_buffer_info(owned.info)):  # no view could be built safely
            _native.logger.debug("dropped a malformed audio frame event: %s", owned)
            if owned.handle.id:
                lib.rtc_drop_handle(owned.handle.id)
            return
        _router.deliver(event.stream_handle, owned, _handles.acquire(owned.handle.id))
    else:
        _router.end(event.stream_handle)
