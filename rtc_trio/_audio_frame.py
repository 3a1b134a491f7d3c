"""AudioFrame: 16-bit PCM samples in a numpy array."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from rtc_trio import _handles, _validate
from rtc_trio._errors import RtcError

class _BufferInfo(Protocol):
    """A received buffer's description: the protobuf message or the C struct alike."""

    data_ptr: int
    num_channels: int
    sample_rate: int
    samples_per_channel: int


MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 384_000
MAX_RECEIVED_SECONDS = 10  # longest received frame (frame_size_ms is at most 10,000)
MAX_CHANNELS = 16
MAX_SAMPLES_PER_SECOND = 768_000
MAX_FRAME_SIZE_MS = 10_000
"""Audio formats (the README's "Supported values" has the measurements behind each bound).

- Sample rates from 8000 Hz to 384 kHz. Lower rates abort the process: a source below
  2000 Hz once its audio is resampled (``source_available_ == frames``), a stream below
  100 Hz (``span index out of range``); 8000 Hz, the lowest rate of speech codecs, keeps a
  margin. 384 kHz is the highest measured.
- 1 to 16 channels, and for sources and streams at most 768,000 samples a second over all
  channels (48 kHz x 16, 96 kHz x 8, 192 kHz x 4, 384 kHz x 2): resampling or remixing more
  overflows libwebrtc's 10 ms audio frame of 7680 samples (``audio_frame.cc`` aborts), and
  24 or more channels abort resampling even below that.
- A stream's ``frame_size_ms`` from 1 to 10,000 ms (10 s frames measured at 384 kHz stereo).
"""


def check_rate_and_channels(sample_rate: object, num_channels: object) -> tuple[int, int]:
    """``(sample_rate, num_channels)`` as ints; ``TypeError``/``ValueError`` if unsupported."""
    rate = _validate.integer("sample_rate", sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, unit=" Hz")
    channels = _validate.integer("num_channels", num_channels, 1, MAX_CHANNELS)
    return rate, channels


def valid_buffer_info(info: _BufferInfo) -> bool:
    """Whether a received buffer's description is complete and within bounds."""
    rate, samples = info.sample_rate, info.samples_per_channel
    return (
        info.data_ptr != 0 and 1 <= info.num_channels <= MAX_CHANNELS
        and 1 <= rate <= MAX_SAMPLE_RATE and 1 <= samples <= rate * MAX_RECEIVED_SECONDS
    )


def check_audio_format(sample_rate: object, num_channels: object) -> tuple[int, int]:
    """:func:`check_rate_and_channels`, and the bound on samples a second of sources and streams."""
    rate, channels = check_rate_and_channels(sample_rate, num_channels)
    if rate * channels > MAX_SAMPLES_PER_SECOND:
        raise ValueError(
            f"{rate} Hz x {channels} channels is more than {MAX_SAMPLES_PER_SECOND} samples a "
            f"second (at {rate} Hz at most {MAX_SAMPLES_PER_SECOND // rate} channels)"
        )
    return rate, channels


def check_source(
    sample_rate: object, num_channels: object, queue_size_ms: object, max_queue_ms: int
) -> tuple[int, int, int]:
    """An audio source's arguments as ints, or ``TypeError``/``ValueError``.

    The queue holds at most ``max_queue_ms`` of audio (60 s measured at 384 kHz x 32
    channels; 92 MB at the 768,000 samples a second allowed).
    """
    rate, channels = check_audio_format(sample_rate, num_channels)
    queue = _validate.integer("queue_size_ms", queue_size_ms, 0, max_queue_ms, step=10)
    if queue == 0 and rate % 100:
        raise ValueError(
            f"a source with queue_size_ms=0 takes 10 ms frames, so its sample_rate must be a "
            f"multiple of 100 Hz; {rate} Hz needs a queue"
        )
    return rate, channels, queue


def _check_samples(data: object) -> None:
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data must be a numpy int16 array, not {type(data).__name__}")
    if data.dtype != np.int16:
        raise TypeError(f"data must have dtype int16, not {data.dtype}")
    if data.ndim not in (1, 2):
        raise ValueError(f"data must have shape (n,) or (n, channels), not {data.shape}")
    if data.shape[0] == 0:
        raise ValueError("data holds no samples")


class AudioFrame:
    """A block of int16 PCM audio.

    ``data`` has shape ``(samples,)`` for mono or ``(samples, channels)``, interleaved;
    received frames always have shape ``(samples_per_channel, num_channels)`` and view
    native memory without a copy (use :meth:`copy` to keep one beyond the stream).
    ``sample_rate`` from 8000 to 384,000 Hz, 1 to 16 channels (the README's "Supported values").
    """

    __slots__ = ("data", "sample_rate")

    data: npt.NDArray[np.int16]
    sample_rate: int

    def __init__(self, data: npt.NDArray[np.int16], sample_rate: int) -> None:
        _check_samples(data)
        channels = data.shape[1] if data.ndim == 2 else 1
        rate, _ = check_rate_and_channels(sample_rate, channels)
        self.data = np.ascontiguousarray(data)
        self.sample_rate = rate

    def _check(self) -> None:
        """Check again what a capture hands over by pointer: ``data`` is writable, and so are
        an array's ``dtype`` and ``shape``."""
        data = self.data
        if not (isinstance(data, np.ndarray) and data.dtype == np.int16 and 1 <= data.ndim <= 2
                and data.shape[0] > 0):
            _check_samples(data)  # raises, naming what is wrong
        if not data.flags.c_contiguous:
            raise ValueError("data must be C-contiguous")

    @classmethod
    def _view(cls, info: _BufferInfo, handle: int) -> AudioFrame:
        """A received frame: a zero-copy view of the buffer ``handle`` owns.

        The frame owns ``handle`` from here: if building it fails, the handle is released.
        ``info`` must have passed :func:`valid_buffer_info` (the native fast path checks the
        same bounds in ffi/rtc_trio_ffi.c: valid_frame).
        """
        try:
            frame = cls.__new__(cls)
            samples, channels = int(info.samples_per_channel), int(info.num_channels)
            raw = _handles.native_view(info.data_ptr, samples * channels * 2, handle)
            frame.data = raw.view(np.int16).reshape(samples, channels)
            frame.sample_rate = int(info.sample_rate)
            return frame
        except BaseException as error:
            _handles.release(handle)
            if isinstance(error, Exception):
                raise RtcError(f"cannot read an audio frame from the native library: {error}") from error
            raise

    @property
    def num_channels(self) -> int:
        """Channels interleaved in ``data``."""
        return 1 if self.data.ndim == 1 else int(self.data.shape[1])

    @property
    def samples_per_channel(self) -> int:
        """Samples of each channel: ``data.shape[0]``."""
        return int(self.data.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(self.data.shape[0] / self.sample_rate)

    def copy(self) -> AudioFrame:
        """A frame owning a copy of the samples (releases nothing native)."""
        return AudioFrame(self.data.copy(), self.sample_rate)

    def __repr__(self) -> str:
        return (
            f"AudioFrame(samples_per_channel={self.samples_per_channel}, "
            f"num_channels={self.num_channels}, sample_rate={self.sample_rate})"
        )
