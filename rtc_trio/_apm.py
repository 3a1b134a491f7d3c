"""AudioProcessingModule: libwebrtc's echo canceller, noise suppressor, high-pass filter and
gain control, in place on a frame's samples; and a scoped processor of two frame streams.

Measured on livekit 1.2.1 (the README's "Supported values"): a frame that is not a whole
number of 10 ms chunks (479 samples at 48 kHz) or has 0 channels panics the native side
and aborts the process; rates below 8000 or above 384,000 Hz fail; a stream delay outside
0 to 500 ms fails. Frames of several 10 ms chunks are processed chunk by chunk.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterable, AsyncIterator, final

import trio

from rtc_trio import _native, _validate
from rtc_trio._audio_frame import MAX_CHANNELS, MAX_FRAME_SIZE_MS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioFrame
from rtc_trio._errors import RtcError
from rtc_trio._handles import NativeHandle, NativeObject
from rtc_trio._proto import ffi_pb2
from rtc_trio._resampler import FrameChannel, address_of

MAX_STREAM_DELAY_MS = 500


def check_apm_frame(frame: object, what: str) -> AudioFrame:
    """``frame`` if the APM can process it in place: whole 10 ms chunks, writable samples."""
    if not isinstance(frame, AudioFrame):
        raise TypeError(f"{what} takes an AudioFrame, not {type(frame).__name__}")
    frame._check()
    data, rate = frame.data, frame.sample_rate
    if rate % 100 or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"{what} takes sample rates that are multiples of 100 Hz (10 ms "
                         f"chunks), from {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz, not {rate}")
    if not 1 <= frame.num_channels <= MAX_CHANNELS:
        raise ValueError(f"{what} takes 1 to {MAX_CHANNELS} channels, not {frame.num_channels}")
    chunk = rate // 100
    samples = frame.samples_per_channel
    if samples % chunk or samples > chunk * MAX_FRAME_SIZE_MS // 10:
        raise ValueError(f"{what} takes frames of whole 10 ms chunks ({chunk} samples at {rate} Hz), "
                         f"at most {MAX_FRAME_SIZE_MS} ms; this one has {samples}")
    if not (data.flags.writeable and data.flags.aligned):
        raise ValueError(f"{what} processes the samples in place: data must be writable and aligned")
    return frame


@final
class AudioProcessingModule(NativeObject):
    """libwebrtc's audio processing, configured once; processes frames in place.

    Feed what the app plays to :meth:`process_reverse_stream` and what it hears to
    :meth:`process_stream`, 10 ms at a time in the order they happen, and tell it the delay
    between the two with :meth:`set_stream_delay_ms`. Frames: 8000 to 384,000 Hz in
    multiples of 100, 1 to 16 channels, a whole number of 10 ms chunks (at most 10 s).
    Use it as a ``with`` block, or call :meth:`close`.
    """

    __slots__ = ("echo_cancellation", "noise_suppression", "high_pass_filter",
                 "auto_gain_control")
    _kind = "audio processing module"

    def __init__(
        self,
        *,
        echo_cancellation: bool = False,
        noise_suppression: bool = False,
        high_pass_filter: bool = False,
        auto_gain_control: bool = False,
    ) -> None:
        self.echo_cancellation = _validate.boolean("echo_cancellation", echo_cancellation)
        self.noise_suppression = _validate.boolean("noise_suppression", noise_suppression)
        self.high_pass_filter = _validate.boolean("high_pass_filter", high_pass_filter)
        self.auto_gain_control = _validate.boolean("auto_gain_control", auto_gain_control)
        req = ffi_pb2.FfiRequest()
        new = req.new_apm
        new.echo_canceller_enabled = self.echo_cancellation
        new.noise_suppression_enabled = self.noise_suppression
        new.high_pass_filter_enabled = self.high_pass_filter
        new.gain_controller_enabled = self.auto_gain_control
        self._handle = NativeHandle(_native.request(req).new_apm.apm.handle.id)

    def process_stream(self, frame: AudioFrame) -> None:
        """Clean ``frame`` (what the app hears: the near end) in place."""
        self._process(frame, "apm_process_stream", "process_stream()")

    def process_reverse_stream(self, frame: AudioFrame) -> None:
        """Analyse ``frame`` (what the app plays: the far end) as the echo reference."""
        self._process(frame, "apm_process_reverse_stream", "process_reverse_stream()")

    def _process(self, frame: AudioFrame, name: str, what: str) -> None:
        handle = self._open()
        data = check_apm_frame(frame, what).data
        req = ffi_pb2.FfiRequest()
        message = getattr(req, name)
        message.apm_handle, message.data_ptr, message.size = handle, address_of(data), data.nbytes
        message.sample_rate, message.num_channels = frame.sample_rate, frame.num_channels
        error = getattr(_native.request(req), name).error
        if error:
            raise RtcError(f"{name} failed: {error}")

    def set_stream_delay_ms(self, delay_ms: int) -> None:
        """How long after :meth:`process_reverse_stream` sees a sound its echo reaches
        :meth:`process_stream`, from 0 to 500 ms."""
        handle = self._open()
        delay = _validate.integer("delay_ms", delay_ms, 0, MAX_STREAM_DELAY_MS, unit=" ms")
        req = ffi_pb2.FfiRequest()
        req.apm_set_stream_delay.apm_handle, req.apm_set_stream_delay.delay_ms = handle, delay
        error = _native.request(req).apm_set_stream_delay.error
        if error:
            raise RtcError(f"apm_set_stream_delay failed: {error}")



@final
class ProcessedFrames(FrameChannel):
    """The near end's frames, cleaned: see :func:`open_audio_processor`."""

    def __init__(self, near: AsyncIterable[AudioFrame], far: AsyncIterable[AudioFrame] | None,
                 apm: AudioProcessingModule) -> None:
        super().__init__(near)
        self.apm = apm
        self._far = None if far is None else FrameChannel(far)
        self._far_ahead_ms = 0  # far-end audio fed minus near-end audio processed
        self._near: AudioFrame | None = None  # taken, waiting for its far end (kept if cancelled)

    async def _pull(self) -> None:
        near = self._near
        if near is None:
            try:
                near = await self._iter.__anext__()
            except StopAsyncIteration:
                self._ended = True
                return
            self._near = check_apm_frame(near, "the near end")
        near_ms = near.samples_per_channel * 1000 // near.sample_rate
        while self._far is not None and self._far_ahead_ms < near_ms:
            try:
                far = await self._far._iter.__anext__()
            except StopAsyncIteration:  # the far end is silent from here on
                await self._far.aclose()
                self._far = None
                break
            self.apm.process_reverse_stream(far)
            self._far_ahead_ms += far.samples_per_channel * 1000 // far.sample_rate
        self._far_ahead_ms = max(self._far_ahead_ms - near_ms, 0)
        self._near = None
        self.apm.process_stream(near)
        self._ready.append(near)

    def _release(self) -> None:
        self.apm.close()

    async def aclose(self) -> None:
        """Release the module and close sources that are async generators."""
        try:
            if self._far is not None:
                await self._far.aclose()
        finally:
            await super().aclose()


@asynccontextmanager
async def open_audio_processor(
    near: AsyncIterable[AudioFrame],
    far: AsyncIterable[AudioFrame] | None = None,
    *,
    echo_cancellation: bool = True,
    noise_suppression: bool = True,
    high_pass_filter: bool = False,
    auto_gain_control: bool = False,
    stream_delay_ms: int = 0,
) -> AsyncIterator[ProcessedFrames]:
    """Clean ``near`` (what the app hears) against ``far`` (what it plays), inside a block.

    Yields a ``trio.abc.ReceiveChannel`` of the near end's frames, processed in place.
    Alignment is by sample count: before each near-end frame, far-end frames are fed until
    the far end is as far along as the near end (exactly one for one with 10 ms frames), so
    both must run at the same pace (both real-time, or both as fast as they come); a far end
    that ends counts as silence, and one that waits holds the near end up. The echo's delay
    beyond that alignment is ``stream_delay_ms`` (0 to 500). Frames are pulled when the
    consumer asks: no task runs; leaving the block releases the module and closes sources
    that are async generators.
    """
    if far is not None and not isinstance(far, AsyncIterable):
        raise TypeError(f"far must be an async iterable of AudioFrame, not {type(far).__name__}")
    delay = _validate.integer("stream_delay_ms", stream_delay_ms, 0, MAX_STREAM_DELAY_MS, unit=" ms")
    if not isinstance(near, AsyncIterable):
        raise TypeError(f"near must be an async iterable of AudioFrame, not {type(near).__name__}")
    apm = AudioProcessingModule(echo_cancellation=echo_cancellation, noise_suppression=noise_suppression,
                                high_pass_filter=high_pass_filter, auto_gain_control=auto_gain_control)
    try:
        if echo_cancellation:
            apm.set_stream_delay_ms(delay)
        channel = ProcessedFrames(near, far, apm)
    except BaseException:
        apm.close()
        raise
    try:
        yield channel
    finally:
        await channel.aclose()
