"""AudioFrame: 16-bit PCM samples in a numpy array."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from rtc_trio import _handles

class _BufferInfo(Protocol):
    """A received buffer's description: the protobuf message or the C struct alike."""

    data_ptr: int
    num_channels: int
    sample_rate: int
    samples_per_channel: int


MAX_CHANNELS = 32
MAX_SAMPLE_RATE = 384_000
MAX_RECEIVED_SECONDS = 10  # longest received frame (frame_size_ms is at most 10,000)


def check_rate_and_channels(sample_rate: object, num_channels: object) -> None:
    """Raise ``TypeError``/``ValueError`` for an impossible sample rate or channel count."""
    check_positive_int("sample_rate", sample_rate, MAX_SAMPLE_RATE)
    check_positive_int("num_channels", num_channels, MAX_CHANNELS)


def valid_buffer_info(info: _BufferInfo) -> bool:
    """Whether a received buffer's description is complete and within bounds."""
    rate, samples = info.sample_rate, info.samples_per_channel
    return (
        info.data_ptr != 0 and 1 <= info.num_channels <= MAX_CHANNELS
        and 1 <= rate <= MAX_SAMPLE_RATE and 1 <= samples <= rate * MAX_RECEIVED_SECONDS
    )


def check_positive_int(name: str, value: object, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must be between 1 and {maximum}, got {value}")


class AudioFrame:
    """A block of int16 PCM audio.

    ``data`` has shape ``(samples,)`` for mono or ``(samples, channels)``, interleaved;
    received frames always have shape ``(samples_per_channel, num_channels)`` and view
    native memory without a copy (use :meth:`copy` to keep one beyond the stream).
    """

    __slots__ = ("data", "sample_rate")

    data: npt.NDArray[np.int16]
    sample_rate: int

    def __init__(self, data: npt.NDArray[np.int16], sample_rate: int) -> None:
        if not isinstance(data, np.ndarray):
            raise TypeError(f"data must be a numpy int16 array, not {type(data).__name__}")
        if data.dtype != np.int16:
            raise TypeError(f"data must have dtype int16, not {data.dtype}")
        if data.ndim not in (1, 2):
            raise ValueError(f"data must have shape (n,) or (n, channels), not {data.shape}")
        if data.shape[0] == 0:
            raise ValueError("data holds no samples")
        channels = data.shape[1] if data.ndim == 2 else 1
        check_rate_and_channels(sample_rate, channels)
        self.data = np.ascontiguousarray(data)
        self.sample_rate = int(sample_rate)

    @classmethod
    def _view(cls, info: _BufferInfo, handle: int) -> AudioFrame:
        """A received frame: a zero-copy view of the buffer ``handle`` owns.

        ``info`` must have passed :func:`valid_buffer_info` (the native fast path checks
        the same bounds in ffi/rtc_trio_ffi.c: valid_frame).
        """
        frame = cls.__new__(cls)
        count = info.samples_per_channel * info.num_channels
        raw = _handles.native_view(info.data_ptr, count * 2, handle)
        frame.data = raw.view(np.int16).reshape(info.samples_per_channel, info.num_channels)
        frame.sample_rate = info.sample_rate
        return frame

    @property
    def num_channels(self) -> int:
        return 1 if self.data.ndim == 1 else int(self.data.shape[1])

    @property
    def samples_per_channel(self) -> int:
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
