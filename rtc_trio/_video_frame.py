"""VideoFrame: one picture in any of the buffer layouts the native library knows."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import numpy.typing as npt

from rtc_trio import _handles, _native
from rtc_trio._errors import RtcError
from rtc_trio._proto import ffi_pb2, video_frame_pb2

MAX_DIMENSION = 16384


class VideoBufferType(enum.IntEnum):
    """Pixel layouts (values are the protocol's)."""

    RGBA = 0
    ABGR = 1
    ARGB = 2
    BGRA = 3
    RGB24 = 4
    I420 = 5
    I420A = 6
    I422 = 7
    I444 = 8
    I010 = 9
    NV12 = 10


_PACKED_BYTES = {
    VideoBufferType.RGBA: 4,
    VideoBufferType.ABGR: 4,
    VideoBufferType.ARGB: 4,
    VideoBufferType.BGRA: 4,
    VideoBufferType.RGB24: 3,
}


def plane_layout(type: VideoBufferType, width: int, height: int) -> list[tuple[int, int]]:
    """``(row_bytes, rows)`` of each plane, packed back to back without padding."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    if type in _PACKED_BYTES:
        return [(width * _PACKED_BYTES[type], height)]
    if type == VideoBufferType.I420:
        return [(width, height), (cw, ch), (cw, ch)]
    if type == VideoBufferType.I420A:
        return [(width, height), (cw, ch), (cw, ch), (width, height)]
    if type == VideoBufferType.I422:
        return [(width, height), (cw, height), (cw, height)]
    if type == VideoBufferType.I444:
        return [(width, height)] * 3
    if type == VideoBufferType.I010:
        return [(2 * width, height), (2 * cw, ch), (2 * cw, ch)]
    return [(width, height), (2 * cw, ch)]  # NV12


def frame_size(type: VideoBufferType, width: int, height: int) -> int:
    """Bytes a frame of this type and size holds."""
    return sum(row_bytes * rows for row_bytes, rows in plane_layout(type, width, height))


def check_dimensions(width: object, height: object) -> None:
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if not 1 <= value <= MAX_DIMENSION:
            raise ValueError(f"{name} must be between 1 and {MAX_DIMENSION}, got {value}")


def as_buffer_type(value: object) -> VideoBufferType:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"type must be a VideoBufferType, not {type(value).__name__}")
    try:
        return VideoBufferType(value)
    except ValueError:
        raise ValueError(f"{value} is not a VideoBufferType") from None


class VideoFrame:
    """A picture: ``width`` x ``height`` pixels of ``type``, bytes in ``data``.

    ``data`` is a C-contiguous uint8 array of exactly :func:`frame_size` bytes. Frames
    received from a stream view native memory without a copy: packed RGB types are shaped
    ``(height, width, bytes_per_pixel)``, planar types are flat (see :meth:`planes`).
    """

    __slots__ = ("width", "height", "type", "data", "timestamp_us")

    width: int
    height: int
    type: VideoBufferType
    data: npt.NDArray[np.uint8]
    timestamp_us: int

    def __init__(
        self, width: int, height: int, type: VideoBufferType, data: npt.NDArray[np.uint8]
    ) -> None:
        check_dimensions(width, height)
        kind = as_buffer_type(type)
        if not isinstance(data, np.ndarray):
            raise TypeError(f"data must be a numpy uint8 array, not {data.__class__.__name__}")
        if data.dtype != np.uint8:
            raise TypeError(f"data must have dtype uint8, not {data.dtype}")
        if not data.flags.c_contiguous:
            raise ValueError("data must be C-contiguous")
        expected = frame_size(kind, width, height)
        if data.nbytes != expected:
            raise ValueError(
                f"a {width}x{height} {kind.name} frame holds {expected} bytes, data has {data.nbytes}"
            )
        self.width = int(width)
        self.height = int(height)
        self.type = kind
        self.data = data
        self.timestamp_us = 0

    @classmethod
    def _view(cls, info: video_frame_pb2.VideoBufferInfo, handle: int, timestamp_us: int) -> VideoFrame:
        """A received buffer as a frame: zero-copy when its planes are packed back to back."""
        frame = cls.__new__(cls)
        frame.width, frame.height = info.width, info.height
        frame.type = VideoBufferType(info.type)
        frame.timestamp_us = timestamp_us
        layout = plane_layout(frame.type, info.width, info.height)
        size = sum(row_bytes * rows for row_bytes, rows in layout)
        if _is_packed(info, layout):
            data = _handles.native_view(info.data_ptr, size, handle)
        else:  # padded strides: gather the rows once, release the native buffer now
            data = _gather(info, layout)
            _handles.release(handle)
        if frame.type in _PACKED_BYTES:
            data = data.reshape(info.height, info.width, _PACKED_BYTES[frame.type])
        frame.data = data
        return frame

    def planes(self) -> list[npt.NDArray[Any]]:
        """One 2-D view per plane (Y, U, V[, A] or Y, UV; a single plane for RGB types)."""
        flat = self.data.reshape(-1)
        views: list[npt.NDArray[Any]] = []
        offset = 0
        for row_bytes, rows in plane_layout(self.type, self.width, self.height):
            plane = flat[offset : offset + row_bytes * rows].reshape(rows, row_bytes)
            views.append(plane.view(np.uint16) if self.type == VideoBufferType.I010 else plane)
            offset += row_bytes * rows
        return views

    def convert(self, type: VideoBufferType, *, flip_y: bool = False) -> VideoFrame:
        """This picture in another layout, converted by the native library (a copy if
        ``type`` is this frame's own and ``flip_y`` is false)."""
        kind = as_buffer_type(type)
        if kind == self.type and not flip_y:
            return self.copy()
        req = ffi_pb2.FfiRequest()
        req.video_convert.dst_type = kind.value  # type: ignore[assignment]
        req.video_convert.flip_y = bool(flip_y)
        self._buffer_info(req.video_convert.buffer)
        reply = _native.request(req).video_convert
        if reply.WhichOneof("message") == "error":
            raise RtcError(f"video_convert {self.type.name} -> {kind.name} failed: {reply.error}")
        owned = reply.buffer
        converted = VideoFrame._view(owned.info, _handles.acquire(owned.handle.id), self.timestamp_us)
        return converted

    def copy(self) -> VideoFrame:
        """A frame owning a copy of the pixels."""
        frame = VideoFrame(self.width, self.height, self.type, self.data.copy())
        frame.timestamp_us = self.timestamp_us
        return frame

    def _buffer_info(self, info: video_frame_pb2.VideoBufferInfo) -> None:
        """Describe the pixels to the native side by pointer (it copies them)."""
        address = self.data.ctypes.data
        layout = plane_layout(self.type, self.width, self.height)
        info.type = self.type.value  # type: ignore[assignment]
        info.width = self.width
        info.height = self.height
        info.data_ptr = address
        if self.type in _PACKED_BYTES:
            info.stride = layout[0][0]
            return
        for row_bytes, rows in layout:
            component = info.components.add()
            component.data_ptr = address
            component.stride = row_bytes
            component.size = row_bytes * rows
            address += row_bytes * rows

    def __repr__(self) -> str:
        return f"VideoFrame({self.width}x{self.height} {self.type.name}, timestamp_us={self.timestamp_us})"


def _is_packed(info: video_frame_pb2.VideoBufferInfo, layout: list[tuple[int, int]]) -> bool:
    if not info.components:
        return not info.stride or info.stride == layout[0][0]
    address = info.data_ptr
    for component, (row_bytes, rows) in zip(info.components, layout):
        if component.data_ptr != address or component.stride != row_bytes:
            return False
        address += row_bytes * rows
    return len(info.components) == len(layout)


def _gather(info: video_frame_pb2.VideoBufferInfo, layout: list[tuple[int, int]]) -> npt.NDArray[np.uint8]:
    from rtc_trio._ffi import ffi

    if info.components:
        planes = [(c.data_ptr, c.stride) for c in info.components]
    else:
        planes = [(info.data_ptr, info.stride or layout[0][0])]
    out = []
    for (address, stride), (row_bytes, rows) in zip(planes, layout):
        raw = np.frombuffer(ffi.buffer(ffi.cast("uint8_t *", address), stride * rows), np.uint8)
        out.append(raw.reshape(rows, stride)[:, :row_bytes].reshape(-1))
    return np.concatenate(out)
