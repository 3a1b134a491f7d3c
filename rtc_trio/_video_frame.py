"""VideoFrame: one picture in any of the buffer layouts the native library knows."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import numpy.typing as npt

from rtc_trio import _handles, _native, _validate
from rtc_trio._errors import RtcError
from rtc_trio._proto import ffi_pb2, video_frame_pb2

MAX_DIMENSION = 16384
MAX_PIXELS = 4096 * 4096
"""Frame sizes: each side from 1 to 16384 pixels, and at most 4096 x 4096 pixels in all
(4K UHD and DCI 4K fit, and 16384x1024). Measured: 16384x16 and 4096x4096 go through a
source, a track and a stream (4096x4096 RGBA peaks at 0.36 GB of memory; 8192x4320 already
at 0.9 GB); the pixel bound keeps a buffered frame at most 64 MiB (RGBA)."""


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


_SAMPLE_BYTES = {VideoBufferType.I010: 2}  # planes of 16-bit samples: strides count samples


_T = VideoBufferType
CONVERSIONS: dict[VideoBufferType, tuple[VideoBufferType, ...]] = {
    _T.RGBA: (_T.BGRA, _T.I420),
    _T.ABGR: (_T.RGBA, _T.BGRA, _T.I420),
    _T.ARGB: (_T.I420,),
    _T.BGRA: (_T.RGBA, _T.I420),
    _T.RGB24: (_T.I420,),
    _T.I420: (_T.RGBA, _T.ABGR, _T.ARGB, _T.BGRA, _T.RGB24),
    _T.I420A: (_T.I420,),
    _T.I422: (_T.RGBA, _T.ABGR, _T.ARGB, _T.I420),
    _T.I444: (_T.RGBA, _T.BGRA, _T.I420),
    _T.I010: (_T.RGBA, _T.BGRA, _T.I420),
    _T.NV12: (_T.RGBA, _T.BGRA, _T.I420),
}
"""What :meth:`VideoFrame.convert` turns each type into besides itself (to itself it copies,
or flips in numpy): the pairs the pinned native converter implements, measured for every
pair from 1x1 to 17x3 pixels with and without ``flip_y`` (the README's "Supported values"); the others
are refused. ABGR goes through RGBA (each pixel's bytes reversed, in numpy): the native ABGR
converter asserts that its input is RGBA and aborts the process."""


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


def check_dimensions(width: object, height: object, least: int = 1) -> tuple[int, int]:
    """``(width, height)`` as ints, each from ``least`` to 16384, together at most
    :data:`MAX_PIXELS`; ``TypeError``/``ValueError`` otherwise."""
    w = _validate.integer("width", width, least, MAX_DIMENSION)
    h = _validate.integer("height", height, least, MAX_DIMENSION)
    if w * h > MAX_PIXELS:
        raise ValueError(f"a {w}x{h} picture has more than 4096x4096 = {MAX_PIXELS} pixels")
    return w, h


def as_buffer_type(value: object, name: str = "type") -> VideoBufferType:
    return _validate.member(name, value, VideoBufferType)


def _check_data(data: object, kind: VideoBufferType, width: int, height: int) -> npt.NDArray[np.uint8]:
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
    return data


class VideoFrame:
    """A picture: ``width`` x ``height`` pixels of ``type``, bytes in ``data``.

    ``data`` is a C-contiguous uint8 array of exactly :func:`frame_size` bytes. Frames
    received from a stream view native memory without a copy: packed RGB types are shaped
    ``(height, width, bytes_per_pixel)``, planar types are flat (see :meth:`planes`).
    Each side from 1 to 16384 pixels, at most 4096x4096 pixels in all; what it converts to
    is in :data:`CONVERSIONS` (the README's "Supported values").
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
        self.width, self.height = check_dimensions(width, height)
        self.type = as_buffer_type(type)
        self.data = _check_data(data, self.type, self.width, self.height)
        self.timestamp_us = 0

    def _check(self) -> None:
        """Check again what the native side will be told (the attributes are writable)."""
        check_dimensions(self.width, self.height)
        _check_data(self.data, as_buffer_type(self.type), self.width, self.height)

    @classmethod
    def _view(cls, info: video_frame_pb2.VideoBufferInfo, handle: int, timestamp_us: int) -> VideoFrame:
        """A received buffer as a frame: zero-copy when its planes are packed back to back.

        The frame owns ``handle`` from here: if building it fails, the handle is released.
        """
        try:
            return cls._build(info, handle, timestamp_us)
        except BaseException as error:
            _handles.release(handle)
            if isinstance(error, Exception) and not isinstance(error, RtcError):
                raise RtcError(f"cannot read a video frame from the native library: {error}") from error
            raise

    @classmethod
    def _build(cls, info: video_frame_pb2.VideoBufferInfo, handle: int, timestamp_us: int) -> VideoFrame:
        frame = cls.__new__(cls)
        try:
            frame.type = VideoBufferType(info.type)
        except ValueError:
            raise RtcError(f"the native library sent a frame of unknown type {info.type}") from None
        frame.width, frame.height = info.width, info.height
        frame.timestamp_us = timestamp_us
        layout = plane_layout(frame.type, info.width, info.height)
        size = sum(row_bytes * rows for row_bytes, rows in layout)
        if _is_packed(info, frame.type, layout):
            data = _handles.native_view(info.data_ptr, size, handle)
        else:  # padded strides: gather the rows once, release the native buffer now
            data = _gather(info, frame.type, layout)
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
        """This picture in another layout (``flip_y``: upside down), as a new frame.

        To its own type it is a copy (flipped in numpy). Other types are converted natively,
        for the pairs in :data:`CONVERSIONS` only; any other pair is a ``ValueError``.
        """
        kind = as_buffer_type(type)
        flip = _validate.boolean("flip_y", flip_y)
        self._check()
        if kind == self.type:
            return self._flipped() if flip else self.copy()
        if kind not in CONVERSIONS[self.type]:
            names = ", ".join(t.name for t in (self.type, *CONVERSIONS[self.type]))
            raise ValueError(f"a {self.type.name} frame converts to {names}, not to {kind.name}")
        source = self
        if self.type == VideoBufferType.ABGR:
            # the native ABGR converter asserts that its input is RGBA and aborts the process:
            # hand it RGBA, which is ABGR with each pixel's bytes reversed
            source = self._reordered_abgr()
            if kind == VideoBufferType.RGBA:
                return source._flipped() if flip else source
        req = ffi_pb2.FfiRequest()
        req.video_convert.dst_type = kind.value  # type: ignore[assignment]
        req.video_convert.flip_y = flip
        source._buffer_info(req.video_convert.buffer)
        reply = _native.request(req).video_convert
        if reply.WhichOneof("message") == "error":
            raise RtcError(f"video_convert {self.type.name} -> {kind.name} failed: {reply.error}")
        owned = reply.buffer
        return VideoFrame._view(owned.info, _handles.acquire(owned.handle.id), self.timestamp_us)

    def _reordered_abgr(self) -> VideoFrame:
        """This ABGR frame as RGBA (a copy)."""
        data = self.data.reshape(self.height, self.width, 4)[..., ::-1].copy()
        frame = VideoFrame(self.width, self.height, VideoBufferType.RGBA, data)
        frame.timestamp_us = self.timestamp_us
        return frame

    def _flipped(self) -> VideoFrame:
        """A copy upside down: every plane's rows in reverse order."""
        rows = [plane.view(np.uint8)[::-1].reshape(-1) for plane in self.planes()]
        data = np.concatenate(rows)
        if self.type in _PACKED_BYTES:
            data = data.reshape(self.height, self.width, _PACKED_BYTES[self.type])
        frame = VideoFrame(self.width, self.height, self.type, data)
        frame.timestamp_us = self.timestamp_us
        return frame

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
        unit = _SAMPLE_BYTES.get(self.type, 1)
        for row_bytes, rows in layout:
            component = info.components.add()
            component.data_ptr = address
            component.stride = row_bytes // unit  # in samples: 16-bit ones for I010
            component.size = row_bytes * rows  # in bytes
            address += row_bytes * rows

    def __repr__(self) -> str:
        return f"VideoFrame({self.width}x{self.height} {self.type.name}, timestamp_us={self.timestamp_us})"


def _is_packed(info: video_frame_pb2.VideoBufferInfo, kind: VideoBufferType,
               layout: list[tuple[int, int]]) -> bool:
    if not info.components:
        return not info.stride or info.stride == layout[0][0]
    address = info.data_ptr
    unit = _SAMPLE_BYTES.get(kind, 1)
    for component, (row_bytes, rows) in zip(info.components, layout):
        if component.data_ptr != address or component.stride * unit != row_bytes:
            return False
        address += row_bytes * rows
    return len(info.components) == len(layout)


def _gather(info: video_frame_pb2.VideoBufferInfo, kind: VideoBufferType,
            layout: list[tuple[int, int]]) -> npt.NDArray[np.uint8]:
    from rtc_trio._ffi import ffi

    unit = _SAMPLE_BYTES.get(kind, 1)
    if info.components:
        planes = [(c.data_ptr, c.stride * unit) for c in info.components]
    else:
        planes = [(info.data_ptr, info.stride or layout[0][0])]
    out = []
    for (address, stride), (row_bytes, rows) in zip(planes, layout):
        raw = np.frombuffer(ffi.buffer(ffi.cast("uint8_t *", address), stride * rows), np.uint8)
        out.append(raw.reshape(rows, stride)[:, :row_bytes].reshape(-1))
    return np.concatenate(out)
