"""AudioResampler: the native SoX resampler, stateful across pushes; and a scoped adapter.

Measured on livekit 1.2.1 (the README's "Supported values"): the native side creates a
resampler from 0 Hz or negative rates (and fails every push), and panics (aborting the
process) on 0 channels; its output buffer is one per resampler, reused by the next push or
flush, so each output frame gets a copy of it (a zero-copy view would change under the
user's hands). Flushing resets the resampler: the next push starts a new stream.
"""

from __future__ import annotations

import collections
import enum
import types
from contextlib import asynccontextmanager
from typing import Any, AsyncIterable, AsyncIterator, final

import numpy as np
import trio

from rtc_trio import _native, _validate
from rtc_trio._audio_frame import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioFrame
from rtc_trio._errors import RtcError
from rtc_trio._ffi import ffi
from rtc_trio._handles import NativeHandle, NativeObject
from rtc_trio._proto import audio_frame_pb2, ffi_pb2

MAX_PUSH_BYTES = 128 * 2**20
"""Most bytes one push takes in, and gives out (estimated from the rate ratio). The native
output buffer grows to the largest output and stays that size until the resampler closes;
the protocol's sizes are 32-bit. 128 MiB is 23 minutes of 48 kHz mono."""


class AudioResamplerQuality(enum.IntEnum):
    """The native SoX quality presets (values are the protocol's): higher is cleaner and
    costs more CPU and latency."""

    QUICK = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    VERY_HIGH = 4


def check_frame(frame: object, rate: int, channels: int, what: str) -> AudioFrame:
    """``frame`` if it is an :class:`AudioFrame` of ``rate`` and ``channels``."""
    if not isinstance(frame, AudioFrame):
        raise TypeError(f"{what} takes an AudioFrame, not {type(frame).__name__}")
    frame._check()
    if frame.sample_rate != rate or frame.num_channels != channels:
        raise ValueError(
            f"{what} takes frames of {rate} Hz x {channels} channel(s), not "
            f"{frame.sample_rate} Hz x {frame.num_channels}"
        )
    return frame


@final
class AudioResampler(NativeObject):
    """Resample int16 audio from ``input_rate`` to ``output_rate``, keeping state across pushes.

    ``push(frame)`` returns the frames that are ready (often none for small frames: the
    filter works in blocks), ``flush()`` the rest at the end of a stream. Rates from 8000
    to 384,000 Hz, 1 to 16 channels. Use it as a ``with`` block, or call :meth:`close`.
    """

    __slots__ = ("input_rate", "output_rate", "num_channels", "quality", "_flat")
    _kind = "resampler"

    def __init__(
        self,
        input_rate: int,
        output_rate: int,
        *,
        num_channels: int = 1,
        quality: AudioResamplerQuality = AudioResamplerQuality.MEDIUM,
    ) -> None:
        self.input_rate = _rate("input_rate", input_rate)
        self.output_rate = _rate("output_rate", output_rate)
        self.num_channels = _validate.integer("num_channels", num_channels, 1, MAX_CHANNELS)
        self.quality = _validate.member("quality", quality, AudioResamplerQuality)
        self._flat = self.num_channels == 1  # mono output is (n,) until a (n, 1) frame comes
        req = ffi_pb2.FfiRequest()
        new = req.new_sox_resampler
        new.input_rate, new.output_rate = self.input_rate, self.output_rate
        new.num_channels = self.num_channels
        new.input_data_type = new.output_data_type = audio_frame_pb2.SOXR_DATATYPE_INT16I
        new.quality_recipe = int(self.quality)  # type: ignore[assignment]
        new.flags = 0
        res = _native.request(req).new_sox_resampler
        if res.WhichOneof("message") != "resampler":
            raise RtcError(f"new_sox_resampler failed: {res.error}")
        self._handle = NativeHandle(res.resampler.handle.id)

    def push(self, frame: AudioFrame) -> list[AudioFrame]:
        """Resample ``frame``; return the output ready so far (zero or more frames).

        ``frame`` must have this resampler's input rate and channel count, and hold at most
        128 MiB in and out.
        """
        handle = self._open()
        check_frame(frame, self.input_rate, self.num_channels, "push()")
        data = frame.data
        out_bytes = -(-data.size * self.output_rate // self.input_rate) * 2
        if data.nbytes > MAX_PUSH_BYTES or out_bytes > MAX_PUSH_BYTES:
            raise ValueError(
                f"a push takes and gives at most {MAX_PUSH_BYTES} bytes; this frame has "
                f"{data.nbytes} and would give about {out_bytes}: push it in parts"
            )
        self._flat = data.ndim == 1
        req = ffi_pb2.FfiRequest()
        push = req.push_sox_resampler
        push.resampler_handle, push.data_ptr, push.size = handle, address_of(data), data.nbytes
        res = _native.request(req).push_sox_resampler
        if res.error:
            raise RtcError(f"push_sox_resampler failed: {res.error}")
        return self._frames(res.output_ptr, res.size)

    def flush(self) -> list[AudioFrame]:
        """The output still inside the filter, at the end of a stream; then start afresh."""
        req = ffi_pb2.FfiRequest()
        req.flush_sox_resampler.resampler_handle = self._open()
        res = _native.request(req).flush_sox_resampler
        if res.error:
            raise RtcError(f"flush_sox_resampler failed: {res.error}")
        return self._frames(res.output_ptr, res.size)

    def _frames(self, address: int, nbytes: int) -> list[AudioFrame]:
        """A copy of the native output buffer as one frame; none for an empty output."""
        step = 2 * self.num_channels
        if not address or nbytes < step:
            return []
        raw = ffi.buffer(ffi.cast("int16_t *", address), nbytes - nbytes % step)
        samples = np.frombuffer(raw, np.int16).copy()  # the buffer is reused by the next call
        frame = AudioFrame.__new__(AudioFrame)
        frame.data = samples if self._flat else samples.reshape(-1, self.num_channels)
        frame.sample_rate = self.output_rate
        return [frame]


    def __repr__(self) -> str:
        return (f"AudioResampler({self.input_rate} -> {self.output_rate} Hz, "
                f"{self.num_channels} channel(s), {self.quality.name}{', closed' if self.closed else ''})")


def address_of(data: np.ndarray[Any, Any]) -> int:
    """The address of ``data``'s first byte (a cheaper way than ``data.ctypes.data``)."""
    return int(ffi.cast("uintptr_t", ffi.from_buffer(data)))


def _rate(name: str, value: object) -> int:
    return _validate.integer(name, value, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, unit=" Hz")


class FrameChannel(trio.abc.ReceiveChannel[AudioFrame]):
    """A receive channel that pulls its frames from a source on demand: no task of its own.

    Subclasses implement :meth:`_pull`, which appends frames to ``_ready`` or raises
    ``trio.EndOfChannel`` at the end; an async generator given as a source is closed with
    the channel (other iterables, such as streams, belong to their owner).
    """

    def __init__(self, source: AsyncIterable[Any]) -> None:
        if not isinstance(source, AsyncIterable):
            raise TypeError(f"expected an async iterable of AudioFrame, not {type(source).__name__}")
        self._source = source
        self._iter = source.__aiter__()
        self._ready: collections.deque[AudioFrame] = collections.deque()
        self._ended = self._closed = self._busy = False

    async def _pull(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Release native state (called once, on close)."""

    async def receive(self) -> AudioFrame:
        """The next frame; ``trio.EndOfChannel`` after the last one."""
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("this channel is closed")
        if self._busy:
            raise trio.BusyResourceError("another task is receiving from this channel")
        self._busy = True
        try:
            while not self._ready:
                if self._ended:
                    raise trio.EndOfChannel
                await self._pull()
            return self._ready.popleft()
        finally:
            self._busy = False

    async def aclose(self) -> None:
        """Release the native side and close a source that is an async generator."""
        if not self._closed:
            self._closed = True
            self._ready.clear()
            self._release()
            source = self._iter
            if isinstance(source, types.AsyncGeneratorType) and not source.ag_running:
                await source.aclose()  # (one running in a receive of another task cannot be)
        await trio.lowlevel.checkpoint()


@final
class ResampledFrames(FrameChannel):
    """The frames of a source, resampled: see :func:`open_resampled`."""

    def __init__(self, source: AsyncIterable[AudioFrame], output_rate: int,
                 quality: AudioResamplerQuality) -> None:
        super().__init__(source)
        self.output_rate = output_rate
        self.quality = quality
        self._resampler: AudioResampler | None = None

    async def _pull(self) -> None:
        try:
            frame = await self._iter.__anext__()
        except StopAsyncIteration:
            self._ended = True
            if self._resampler is not None:
                self._ready.extend(self._resampler.flush())
            return
        if self._closed:  # by another task while this one waited for the source
            raise trio.ClosedResourceError("this channel is closed")
        resampler = self._resampler
        if resampler is None:
            if not isinstance(frame, AudioFrame):
                raise TypeError(f"the source yielded {type(frame).__name__}, not an AudioFrame")
            frame._check()
            resampler = self._resampler = AudioResampler(
                frame.sample_rate, self.output_rate, num_channels=frame.num_channels,
                quality=self.quality)
        self._ready.extend(resampler.push(frame))

    def _release(self) -> None:
        if self._resampler is not None:
            self._resampler.close()


@asynccontextmanager
async def open_resampled(
    frames: AsyncIterable[AudioFrame],
    output_rate: int,
    *,
    quality: AudioResamplerQuality = AudioResamplerQuality.MEDIUM,
) -> AsyncIterator[ResampledFrames]:
    """Resample any async iterable of frames (a file, a mixer, a TTS engine) inside a block.

    Yields a ``trio.abc.ReceiveChannel`` of frames at ``output_rate``; the input rate and
    channel count are the first frame's, and a later frame that differs raises
    ``ValueError`` from ``receive()``. The output ends once the input does, with the
    resampler flushed. Frames are pulled when the consumer asks: no task runs, and leaving
    the block releases the resampler (and closes the source if it is an async generator).
    """
    rate = _rate("output_rate", output_rate)
    quality = _validate.member("quality", quality, AudioResamplerQuality)
    channel = ResampledFrames(frames, rate, quality)
    try:
        yield channel
    finally:
        await channel.aclose()
