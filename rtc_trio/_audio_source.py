"""AudioSource: pushes PCM frames into the native audio pipeline."""

from __future__ import annotations

import inspect
import os
import weakref
from contextlib import asynccontextmanager
from typing import Any, AsyncIterable, AsyncIterator

import numpy as np
import trio

from rtc_trio import _native, _router
from rtc_trio._audio_frame import AudioFrame, check_source
from rtc_trio._errors import RtcError
from rtc_trio._ffi import ffi, lib
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import audio_frame_pb2, ffi_pb2

MAX_QUEUE_MS = 60_000
DIRECT_SPIN_US = 500  # longest a direct capture's completion is awaited with the loop blocked
OBSERVER_BACKLOG = 100  # native frames of the playout observer: a tick lost makes playout late, never early


class AudioSource:
    """A native audio source; create it with :func:`open_audio_source`.

    One capture is in flight at a time, which keeps frames in order: ``capture_frame``
    sends its frame once the previous one's capture completed, and returns without
    waiting for its own (that wait usually costs nothing by the next call). A native
    failure of a capture is raised by the next ``capture_frame`` or ``wait_for_playout``,
    also when a wait for that capture was cancelled.

    A source with a queue counts its native queue exactly (``queued_duration``): the native
    side reports nothing about it, so the source watches its own output through a native
    stream of its own (100 frames a second, settled in C without Python) and counts each 10 ms
    block it plays against what was captured, failed and cleared. That track and stream are
    two more native handles (counted by :func:`live_handles`), from the first capture until
    ``wait_for_playout`` finds the queue played out, and again from the next capture.
    """

    def __init__(self, handle: NativeHandle, sample_rate: int, num_channels: int, queue_size_ms: int) -> None:
        self._handle = handle
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.queue_size_ms = queue_size_ms
        self._spin_us = DIRECT_SPIN_US if queue_size_ms == 0 else 0
        self._error = ffi.new("char[]", lib.CAPTURE_ERROR_MAX)
        self._busy = False
        self._piece = sample_rate * queue_size_ms // 1000  # samples per channel of a queue-full
        self._held = 0  # samples (all channels) of the frame being captured not yet sent
        self._clears = 0  # clear_queue calls: a frame being sent in pieces stops at the next
        self._settling = trio.Lock()  # one task at a time waits on the eventfd
        self._block = sample_rate // 100 * num_channels  # samples the native queue plays per 10 ms
        self._playout = ffi.new("uint64_t[2]")  # queued samples, ticks observed
        self._observer: list[NativeHandle] = []  # [hidden track,] stream watching the output
        self._tracks: list[weakref.ref[Any]] = []  # the user's tracks of this source (LocalAudioTrack)
        self._had_track = False  # once the user had one, no hidden track again (see _observe)
        self._observed_track = 0  # the handle of the track the observer reads
        clear = ffi_pb2.FfiRequest()
        clear.clear_audio_buffer.source_handle = handle.id
        self._clear_request = clear.SerializeToString()
        try:
            self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except BaseException:
            handle.release()
            raise
        opened = lib.rtc_capture_open(handle.id, self._wake_fd)  # its captures' state, in C
        if opened != lib.RTC_OPENED:
            os.close(self._wake_fd)
            handle.release()
            if opened == lib.RTC_NO_MEMORY:
                raise MemoryError("no memory for the audio source's capture record")
            raise RuntimeError(f"audio source {handle.id} already has a capture record")

    @property
    def queued_duration(self) -> float:
        """Seconds of audio in the native queue: captured (sent, not failed), not cleared,
        not yet played. Exact to one 10 ms block; 0 for a source without a queue."""
        if not self.queue_size_ms or lib.rtc_capture_playout(self._handle.id, False, self._playout) == lib.RTC_CAPTURE_CLOSED:
            return 0.0
        return (int(self._playout[0]) + self._held) / (self.sample_rate * self.num_channels)

    async def capture_frame(self, frame: AudioFrame) -> None:
        """Queue ``frame``; waits while the native queue is full (``queue_size_ms``).

        A frame longer than the queue is sent a queue-full at a time, so it returns once
        the last piece is sent; ``clear_queue`` drops the pieces not sent yet. Cancelled
        meanwhile, the pieces already sent stay queued and the rest is dropped.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_frame(frame)
        if self._busy:
            raise trio.BusyResourceError("another task is capturing into this source")
        self._busy = True
        try:
            await self._send(frame)
        finally:
            self._busy = False
        await trio.lowlevel.cancel_shielded_checkpoint()

    def _check_frame(self, frame: AudioFrame) -> None:
        if self._handle.released:
            raise trio.ClosedResourceError("this audio source is closed")
        if not isinstance(frame, AudioFrame):
            raise TypeError(f"capture_frame takes an AudioFrame, not {type(frame).__name__}")
        frame._check()
        if frame.sample_rate != self.sample_rate or frame.num_channels != self.num_channels:
            raise ValueError(
                f"this source takes {self.sample_rate} Hz, {self.num_channels} channel(s); "
                f"the frame has {frame.sample_rate} Hz, {frame.num_channels} channel(s)"
            )
        if self.queue_size_ms == 0 and frame.samples_per_channel * 100 != self.sample_rate:
            raise ValueError(
                f"a source with queue_size_ms=0 takes 10 ms frames ({self.sample_rate // 100} "
                f"samples per channel), got {frame.samples_per_channel}"
            )
        _native.check_usable()  # after a native panic, or in a forked child

    async def _send(self, frame: AudioFrame) -> None:
        """Send ``frame`` once the capture before it completed, in one native call.

        The request is encoded natively and the samples go down by pointer (the native side
        copies them during the call). A completion is recorded natively in this source's
        record, without Python: usually the previous capture's has come by the next call, or
        comes within ``_spin_us`` (a direct source's captures complete within a thread hop).
        Otherwise this task waits for it in :meth:`_settle_pending`. A frame longer than
        the queue goes in pieces of a queue-full (views, not copies): a capture in flight
        then never holds more than the queue, which bounds what a clear can miss (the
        capture in flight is cleared again when it completes).
        """
        data = frame.data
        if self._piece and not self._observer:
            self._observe()  # before the capture: every block it plays is seen
        if not self._piece or data.shape[0] <= self._piece:
            async_id = _native.next_async_id()
            while not self._send_samples(data, async_id):
                await self._settle_pending()
            return
        clears = self._clears
        try:
            for start in range(0, data.shape[0], self._piece):
                piece = data[start:start + self._piece]
                self._held = (data.shape[0] - start) * self.num_channels  # this piece on
                async_id = _native.next_async_id()
                while self._clears == clears:  # else cleared meanwhile: the rest is dropped
                    if self._send_samples(piece, async_id):
                        break
                    await self._settle_pending()
                else:
                    return
        finally:
            self._held = 0

    def _try_send(self, frame: AudioFrame, async_id: int) -> bool:
        """Send a checked ``frame`` if the capture before it completed (within ``_spin_us``);
        False if it is still in flight or failed, or if the frame is longer than the queue
        (then nothing was sent: :meth:`capture_frame` sends it in pieces). rtc_trio.aio calls
        it directly when no capture is in flight."""
        if self._piece and (frame.data.shape[0] > self._piece or not self._observer):
            return False
        return self._send_samples(frame.data, async_id)

    def _send_samples(self, data: Any, async_id: int) -> bool:
        """:meth:`_try_send` for C-contiguous int16 samples of shape (samples, channels)."""
        sent = lib.rtc_capture_audio(
            self._handle.id, async_id, self._spin_us, ffi.from_buffer(data),
            self.num_channels, self.sample_rate, data.shape[0],
        )
        if sent == lib.RTC_CAPTURE_REFUSED:  # the previous capture completed: only this one failed
            raise RtcError("livekit_ffi refused the capture_audio_frame request")
        if sent == lib.RTC_CAPTURE_SENT:
            self._held = max(self._held - data.size, 0)  # now counted natively
            return True
        return False

    async def _settle_pending(self) -> None:
        """Wait until no capture is in flight; raise the last one's failure, exactly once.

        The outcome stays in the source's native record until read here, so a cancelled
        wait loses nothing. One task at a time waits on the eventfd; another waits its turn
        and reads the state again.
        """
        await self._acquire_settling()
        try:
            while not self._settled():
                await self._wait_woken()
        finally:
            self._settling.release()

    def _settled(self) -> bool:
        """True if nothing is in flight; False once parked (the flight's end writes the
        eventfd). Raises the last capture's failure, or if the source is closed."""
        state = lib.rtc_capture_settle(self._handle.id, self._error, len(self._error))
        if state == lib.RTC_CAPTURE_IDLE:
            return True
        if state == lib.RTC_CAPTURE_FAILED:
            error = ffi.string(self._error).decode(errors="replace")
            raise RtcError(f"capture_audio_frame failed (previous frame): {error}")
        if state == lib.RTC_CAPTURE_CLOSED:
            raise trio.ClosedResourceError("this audio source is closed")
        _native.check_usable()  # parked; after a native panic the wake-up comes from _on_panic
        return False

    async def _wait_woken(self) -> None:
        """Wait for the eventfd the end of the flight writes to (or the source's closing)."""
        if self._wake_fd < 0:
            raise trio.ClosedResourceError("this audio source is closed")
        try:
            await trio.lowlevel.wait_readable(self._wake_fd)
        except trio.ClosedResourceError:
            raise trio.ClosedResourceError("this audio source is closed") from None
        if self._wake_fd < 0:  # closed after the fd woke this task, before it ran
            raise trio.ClosedResourceError("this audio source is closed")
        try:
            os.eventfd_read(self._wake_fd)
        except BlockingIOError:
            pass  # a spurious wake-up: nothing was written

    def clear_queue(self) -> None:
        """Discard everything captured so far that has not played yet.

        Also a capture still in flight (sent, but not yet queued natively, such as the rest
        of a frame longer than the queue): it is cleared again natively the moment it
        completes, before any later capture is sent. At most one 10 ms block that the source
        was playing at that moment still reaches the tracks.
        """
        if self._handle.released:
            raise trio.ClosedResourceError("this audio source is closed")
        _native.check_usable()
        self._clears += 1  # a frame being sent in pieces sends no more of them
        self._held = 0
        cleared = lib.rtc_capture_clear(self._handle.id, self._clear_request, len(self._clear_request))
        if cleared == lib.RTC_CAPTURE_REFUSED:
            raise RtcError("livekit_ffi refused the clear_audio_buffer request")
        if cleared == lib.RTC_CAPTURE_CLOSED:
            raise trio.ClosedResourceError("this audio source is closed")

    async def wait_for_playout(self) -> None:
        """Return once the last sample captured has left the source for its tracks.

        Waits for the capture in flight, then for the source to play its native queue out,
        block by block as it does, observed (not estimated from the clock): it returns one
        10 ms tick after the count reached zero, so never before the last block played,
        however late a loaded machine plays it. A remainder shorter than 10 ms would stay
        queued until more audio came: it is completed with silence first (unless another
        task is capturing). Cancelled, it leaves the queue as it was.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._handle.released:
            raise trio.ClosedResourceError("this audio source is closed")
        if lib.rtc_capture_wait(self._handle.id, self._spin_us) != lib.RTC_CAPTURE_IDLE:
            await self._settle_pending()
        if self.queue_size_ms:
            await self._pad_to_block()
            await self._wait_played()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def speak(self, frames: AsyncIterable[AudioFrame]) -> None:
        """Play ``frames`` to their end, then wait for the playout: barge-in made simple.

        Cancel the enclosing scope (the user started talking) and it stops at once: the
        queue is cleared (the capture in flight too), so the source is empty whether it
        returned, was cancelled or raised. An async generator passed in is closed.
        A refused call leaves the queue as it was: anything but an async iterable is a
        ``TypeError``, and a first frame this source refuses (``TypeError``/``ValueError``)
        is raised before anything is captured or cleared.
        """
        if not hasattr(frames, "__aiter__"):
            raise TypeError(f"speak takes an async iterable of AudioFrame, not {type(frames).__name__}")
        refused = started = False
        try:
            async for frame in frames:
                if not started:
                    try:
                        self._check_frame(frame)
                    except (TypeError, ValueError):
                        refused = True  # nothing of this call is queued: nothing to clear
                        raise
                    started = True
                await self.capture_frame(frame)
            await self.wait_for_playout()
        finally:
            try:
                if not refused and not self._handle.released:
                    self.clear_queue()
            finally:
                if inspect.isasyncgen(frames):
                    await frames.aclose()

    async def _pad_to_block(self) -> None:
        """Complete a remainder shorter than a block with silence, so that it plays."""
        if lib.rtc_capture_playout(self._handle.id, False, self._playout) == lib.RTC_CAPTURE_CLOSED:
            raise trio.ClosedResourceError("this audio source is closed")
        remainder = int(self._playout[0]) % self._block
        if remainder and not self._busy:
            pad = np.zeros(((self._block - remainder) // self.num_channels, self.num_channels), np.int16)
            self._busy = True
            try:
                await self._send(AudioFrame(pad, self.sample_rate))
            finally:
                self._busy = False

    async def _wait_played(self) -> None:
        """Until a tick has been observed after the count of the queue fell below a block.

        The eventfd is waited on under ``_settling`` one tick at a time, so a capture in
        another task waits at most a tick for its turn, not for the whole queue.
        """
        played_at = None  # the tick after which the queue is empty
        while True:
            await self._acquire_settling()
            try:
                state = lib.rtc_capture_playout(self._handle.id, True, self._playout)
                if state == lib.RTC_CAPTURE_CLOSED:
                    raise trio.ClosedResourceError("this audio source is closed")
                queued, ticks = int(self._playout[0]), int(self._playout[1])
                if self._observer and not self._observing_open_track():
                    self._unobserve()  # its track was dropped without close(): it ticks no more
                if not self._observer:
                    if not queued:
                        return  # stopped: nothing was captured since the queue was empty
                    self._observe()
                    if not self._observer:
                        raise trio.ClosedResourceError(
                            "the track this source plays through was closed: its playout can "
                            "no longer be observed (open a track on it to wait again)")
                if queued >= self._block:
                    played_at = None
                elif played_at is None:
                    played_at = ticks + 1
                elif ticks >= played_at:
                    if not queued and state == lib.RTC_CAPTURE_IDLE and not self._busy:
                        self._unobserve()  # nothing to watch until the next capture
                    return
                _native.check_usable()
                await self._wait_woken()
            finally:
                self._settling.release()

    async def _acquire_settling(self) -> None:
        try:
            self._settling.acquire_nowait()  # no schedule point when nobody else waits
        except trio.WouldBlock:
            await self._settling.acquire()

    def _observe(self) -> None:
        """Watch the source's own output (see the class): a native stream whose frames C counts
        and releases, on one of the user's tracks of this source, or on a hidden track of its
        own while the user has none. Created synchronously, the stream sees every block played
        after this returns. On failure nothing is left.

        A second track is never added beside the user's: with two tracks on one source, the
        native library was measured to corrupt its heap now and then when they are released
        (1 run in 4-7 of 300 sources with frames flowing); see :meth:`_track_opening`. Once
        the user's track is closed (a room may still publish it natively) the source is not
        observed again until the user opens another."""
        sub: _router.Subscription[Any] = _router.Subscription(1)  # claims frames that came first
        try:
            tracks = self._open_tracks()
            if tracks:
                track_id = tracks[0]._handle.id
            elif self._had_track:
                return  # its track may live on in a room: a hidden one would be a second
            else:
                track_req = ffi_pb2.FfiRequest()
                track_req.create_audio_track.name = "rtc_trio playout"
                track_req.create_audio_track.source_handle = self._handle.id
                track = NativeHandle(_native.request(track_req).create_audio_track.track.handle.id)
                self._observer.append(track)
                track_id = track.id
            req = ffi_pb2.FfiRequest()
            new = req.new_audio_stream
            new.track_handle = track_id
            new.type = audio_frame_pb2.AudioStreamType.AUDIO_STREAM_NATIVE
            new.sample_rate = self.sample_rate
            new.num_channels = self.num_channels
            new.queue_size_frames = OBSERVER_BACKLOG
            stream = NativeHandle(_native.request(req).new_audio_stream.stream.handle.id)
            self._observer.append(stream)
            _router.subscribe(stream.id, sub)
            observed = lib.rtc_capture_observe(self._handle.id, stream.id, self._block)
            if observed != lib.RTC_OPENED:
                raise RuntimeError(f"audio source {self._handle.id} cannot observe stream {stream.id}")
            self._observed_track = track_id
        except BaseException:
            self._unobserve()
            raise
        finally:
            sub.close()  # from here on C counts its frames; those that came first are released

    def _unobserve(self) -> None:
        """Stop watching the output (the queue is empty): its stream (and hidden track) are released."""
        lib.rtc_capture_unobserve(self._handle.id)
        for handle in reversed(self._observer):
            handle.release()
        self._observer.clear()
        self._observed_track = 0

    # -- the user's tracks (LocalAudioTrack calls these) ------------------------------------
    def _open_tracks(self) -> list[Any]:
        """The user's tracks of this source that are still open."""
        tracks = [track for ref in self._tracks if (track := ref()) is not None
                  and not track._handle.released]
        self._tracks = [weakref.ref(track, self._track_collected) for track in tracks]
        return tracks

    def _track_collected(self, _: Any) -> None:
        """A track dropped without ``close()``: a task waiting for its ticks re-checks."""
        if self._wake_fd >= 0:
            os.eventfd_write(self._wake_fd, 1)

    def _observing_open_track(self) -> bool:
        """True if the observer reads its own hidden track or one of the user's open tracks."""
        return len(self._observer) == 2 or any(
            track._handle.id == self._observed_track for track in self._open_tracks())

    def _track_opening(self) -> bool:
        """A user's track is about to be created: a hidden observer goes first, so that the
        source never has the hidden track beside the user's. True if one went (the caller
        then calls :meth:`_track_opened` to observe through the new track)."""
        if self._handle.released or len(self._observer) != 2:
            return False
        self._unobserve()
        return True

    def _track_opened(self, track: Any, observe: bool) -> None:
        """The user's ``track`` of this source exists now; ``observe``: watch through it."""
        self._tracks.append(weakref.ref(track, self._track_collected))
        self._had_track = True
        if observe and not self._handle.released and not self._observer:
            self._observe()  # blocks played meanwhile are missed: playout can be late, not early

    def _track_closing(self, track: Any) -> None:
        """The user's ``track`` is about to be released: an observer reading it goes first."""
        if not self._handle.released and self._observer and self._observed_track == track._handle.id:
            self._unobserve()

    def _close(self) -> None:
        lib.rtc_capture_close(self._handle.id)  # from here on nothing writes to the eventfd
        if self._wake_fd >= 0:
            trio.lowlevel.notify_closing(self._wake_fd)  # a blocked waiter: ClosedResourceError
            os.close(self._wake_fd)
            self._wake_fd = -1
        for handle in reversed(self._observer):
            handle.release()
        self._tracks.clear()
        self._handle.release()


@asynccontextmanager
async def open_audio_source(
    sample_rate: int = 48000, num_channels: int = 1, queue_size_ms: int = 1000
) -> AsyncIterator[AudioSource]:
    """An :class:`AudioSource` that lives until the block ends.

    ``queue_size_ms`` (a multiple of 10) is the native queue: ``capture_frame`` waits while it
    is full, which paces a producer at real time. 0 means no queue: frames go straight to the
    tracks and must be exactly 10 ms long (so the rate must be a multiple of 100 Hz).
    Supported: 8000 to 384,000 Hz, 1 to 16 channels, at most 768,000 samples a second in
    all, ``queue_size_ms`` up to 60,000 (the README's "Supported values").
    """
    sample_rate, num_channels, queue_size_ms = check_source(
        sample_rate, num_channels, queue_size_ms, MAX_QUEUE_MS)
    await trio.lowlevel.checkpoint()
    req = ffi_pb2.FfiRequest()
    new = req.new_audio_source
    new.type = audio_frame_pb2.AudioSourceType.AUDIO_SOURCE_NATIVE
    new.sample_rate = sample_rate
    new.num_channels = num_channels
    new.queue_size_ms = queue_size_ms
    new.options.echo_cancellation = False
    new.options.noise_suppression = False
    new.options.auto_gain_control = False
    handle = NativeHandle(_native.request(req).new_audio_source.source.handle.id)
    source = AudioSource(handle, int(sample_rate), int(num_channels), queue_size_ms)
    try:
        yield source
    finally:
        source._close()
