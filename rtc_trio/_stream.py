"""What audio and video streams share: a native stream handle and its bounded subscription."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

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


@dataclass(frozen=True)
class StreamStatistics:
    """A stream's buffer at one moment, like trio's ``MemoryChannelStatistics``."""

    buffered: int
    """Frames received and waiting to be read."""
    capacity: int
    """Most frames the stream buffers before it drops the oldest."""
    dropped: int
    """Frames dropped so far because the consumer fell behind."""


class FrameStream(trio.abc.ReceiveChannel[FrameT]):
    """Frames of one native stream, in order, from a buffer of ``capacity`` frames.

    A ``trio.abc.ReceiveChannel``: ``receive()``, ``async for``, ``aclose()``. When the consumer
    falls behind, the oldest buffered frame is dropped (its native memory released) and
    counted in :attr:`dropped`. Iteration ends when the track ends. A consumer that finds no
    frame waits on the stream's own eventfd, made readable by the next frame.
    """

    def __init__(self, sub: _router.Subscription[Any], handle: NativeHandle) -> None:
        self._sub = sub
        self._handle = handle
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        sub.wake_fd = self._wake_fd

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer fell behind."""
        return self._sub.dropped

    @property
    def capacity(self) -> int:
        """Most frames buffered before the oldest is dropped."""
        return self._sub.capacity

    def statistics(self) -> StreamStatistics:
        """How many frames wait to be read, the capacity, and how many were dropped."""
        return StreamStatistics(self._buffered(), self.capacity, self.dropped)

    def _buffered(self) -> int:
        return self._sub.buffered()

    def _frame(self, item: Any) -> FrameT:
        raise NotImplementedError

    def _pop(self) -> FrameT | None:
        """The next frame if one is buffered; ``trio.EndOfChannel`` once all are read."""
        try:
            return self._frame(self._sub.receive_nowait())
        except trio.WouldBlock:
            return None

    def _park(self) -> bool:
        """Arm the wake-up for the next frame; False if there is something to read."""
        return self._sub.park_on_fd()

    async def receive(self) -> FrameT:
        """The next frame; ``trio.EndOfChannel`` once the stream ended.

        Always a checkpoint, like every trio receive: a frame found without waiting still
        yields to the scheduler once.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            frame = self._pop()
            if frame is not None:
                break
            if self._park():
                await trio.lowlevel.wait_readable(self._wake_fd)
                waited = True
                try:
                    os.eventfd_read(self._wake_fd)
                except BlockingIOError:
                    pass  # a spurious wake-up: nothing was written
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return frame

    async def aclose(self) -> None:
        """Close the stream before its block ends: what leaving the block does, early.

        Buffered frames are released; a task blocked in :meth:`receive` and every later call
        get ``trio.ClosedResourceError``. Closing twice is harmless.
        """
        self._close()
        await trio.lowlevel.checkpoint()

    def _close(self) -> None:
        self._sub.close()  # from here on nothing writes to the eventfd
        if self._wake_fd >= 0:
            trio.lowlevel.notify_closing(self._wake_fd)  # a blocked reader: ClosedResourceError
            os.close(self._wake_fd)
            self._wake_fd = -1
        self._handle.release()


def create_stream(
    req: ffi_pb2.FfiRequest, capacity: int,
    make: Callable[[_router.Subscription[Any], NativeHandle], StreamT],
) -> StreamT:
    """Send a stream-creating request, route its events, and wrap them with ``make``.

    Events that arrive before the response names the stream's handle are parked by the
    router and claimed here. On any failure nothing is left behind.
    """
    sub: _router.Subscription[Any] = _router.Subscription(capacity)
    try:
        response = _native.request(req)
    except BaseException:
        sub.close()
        raise
    owned = getattr(response, req.WhichOneof("message") or "").stream
    handle = NativeHandle(owned.handle.id)
    _router.subscribe(handle.id, sub)
    try:
        return make(sub, handle)
    except BaseException:
        sub.close()
        handle.release()
        raise
