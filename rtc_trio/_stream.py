"""What audio and video streams share: a native stream handle and its bounded subscription."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import trio

from rtc_trio import _native, _router
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2

FrameT = TypeVar("FrameT")
StreamT = TypeVar("StreamT", bound="FrameStream[Any]")


def check_capacity(capacity: object) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, got {capacity}")
    return capacity


def native_backlog(capacity: int, floor: int) -> int:
    """Frames the native stream may queue before conversion: as many as ours, at least ``floor``.

    It bounds native memory when a producer outruns the native converter (unpaced video);
    frames dropped there are the native library's and do not show in ``dropped`` (the
    protocol does not report them). The floor absorbs capture bursts: a small native bound
    drops frames of a burst even when the consumer keeps up.
    """
    return max(capacity, floor)


class FrameStream(Generic[FrameT]):
    """Frames of one native stream, in order, from a buffer of ``capacity`` frames.

    When the consumer falls behind, the oldest buffered frame is dropped (its native memory
    released) and counted in :attr:`dropped`. Iteration ends when the track ends.
    """

    def __init__(self, sub: _router.Subscription[Any], handle: NativeHandle) -> None:
        self._sub = sub
        self._handle = handle

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer fell behind."""
        return self._sub.dropped

    @property
    def capacity(self) -> int:
        return self._sub.capacity

    def _frame(self, item: Any) -> FrameT:
        raise NotImplementedError

    async def receive(self) -> FrameT:
        """The next frame; ``trio.EndOfChannel`` once the stream ended."""
        return self._frame(await self._sub.receive())

    def __aiter__(self: StreamT) -> StreamT:
        return self

    async def __anext__(self) -> FrameT:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def _close(self) -> None:
        self._sub.close()
        self._handle.release()


def create_stream(req: ffi_pb2.FfiRequest, capacity: int) -> tuple[_router.Subscription[Any], NativeHandle]:
    """Send a stream-creating request; route its events before anything can be missed.

    Events that arrive before the response names the stream's handle are parked by the
    router and claimed here. On failure nothing is left behind.
    """
    sub: _router.Subscription[Any] = _router.Subscription(capacity)
    try:
        response = _native.request(req)
    except BaseException:
        sub.close()
        raise
    name = req.WhichOneof("message") or ""
    owned = getattr(response, name).stream
    handle = NativeHandle(owned.handle.id)
    _router.subscribe(handle.id, sub)
    return sub, handle
