"""What audio and video streams share: a native stream handle and its bounded subscription."""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import trio

from rtc_trio import _native, _router, _validate
from rtc_trio._audio_frame import MAX_FRAME_SIZE_MS, check_audio_format
from rtc_trio._errors import RtcError
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2

FrameT = TypeVar("FrameT")
StreamT = TypeVar("StreamT", bound="FrameStream[Any]")


MAX_AUDIO_BUFFER_BYTES = 128 * 2**20
"""Most audio one stream may buffer: ``capacity`` frames of the stream's frame size.

The capacity is what bounds memory: the native stream preallocates a slot per frame of it
(2**31 frames asked it for 80 GB and aborted the process), our ring another, and each
buffered frame holds its samples. 128 MiB is 23 minutes of 48 kHz mono, and leaves
``capacity=100_000`` 10 ms frames of 48 kHz mono (a long unpaced burst) possible."""

MAX_VIDEO_CAPACITY = 30
"""Most frames one video stream may buffer: 1 s at 30 fps. Worst case, with the native
queue before conversion (as many frames, at least 16): 30 x 8.3 MB + 30 x 3.1 MB = 0.34 GB
of 1920x1080 RGBA, 1.4 GB of 3840x2160."""


def check_audio_stream(
    sample_rate: object, num_channels: object, frame_size_ms: object, capacity: object
) -> tuple[int, int, int | None, int]:
    """An audio stream's arguments as ints, or ``TypeError``/``ValueError``.

    The capacity is bounded by :data:`MAX_AUDIO_BUFFER_BYTES` over the bytes of a frame
    (counted as at least 10 ms: the native queue holds 10 ms frames).
    """
    rate, channels = check_audio_format(sample_rate, num_channels)
    frame_ms = None
    if frame_size_ms is not None:
        frame_ms = _validate.integer("frame_size_ms", frame_size_ms, 1, MAX_FRAME_SIZE_MS)
    frame_bytes = rate * max(frame_ms or 10, 10) // 1000 * channels * 2
    limit = MAX_AUDIO_BUFFER_BYTES // frame_bytes
    why = f" (a stream buffers at most 128 MiB; a frame here counts {frame_bytes} bytes)"
    return rate, channels, frame_ms, check_capacity(capacity, limit, why)


def check_capacity(capacity: object, limit: int, why: str = "") -> int:
    """``capacity`` as an int from 1 to ``limit`` (``why`` says where the limit comes from)."""
    try:
        return _validate.integer("capacity", capacity, 1, limit)
    except ValueError as error:
        raise ValueError(f"{error}{why}") from None


def native_backlog(capacity: int, floor: int) -> int:
    """Frames the native stream may queue before conversion: as many as ours, at least ``floor``.

    It bounds native memory when a producer outruns the native converter (unpaced video);
    frames dropped there are the native library's and do not show in ``dropped`` (the
    protocol does not report them). The floor absorbs capture bursts: a small native bound
    drops frames of a burst even when the consumer keeps up.
    """
    return max(capacity, floor)


MAX_BATCH = 1 << 20
"""Most frames :meth:`FrameStream.receive_batch` returns at once (more than any capacity)."""


@dataclass(frozen=True)
class StreamStatistics:
    """A stream's buffer at one moment, like trio's ``MemoryChannelStatistics``."""

    buffered: int
    """Frames received and waiting to be read."""
    capacity: int
    """Most frames the stream buffers before it drops the oldest."""
    dropped: int
    """Frames dropped so far because the consumer fell behind."""


@dataclass
class Succession:
    """Whether a stream that follows a participant may still get a next source.

    Set by the room as the participant leaves and comes back: ``deadline`` (on trio's
    clock) is when the stream ends unless they are back; ``ended`` is final.
    """

    deadline: float = math.inf
    ended: bool = False

    def over(self) -> bool:
        if not self.ended and trio.current_time() >= self.deadline:
            self.ended = True
        return self.ended


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
        self._succession: Succession | None = None  # set for a stream that follows a participant
        # frames a replaced native stream still held, read before the current one's
        self._carried: deque[FrameT] = deque()
        self._generation = 0  # how many times the native stream read was replaced
        self._retired_dropped = 0  # dropped by the native streams replaced so far

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer fell behind."""
        return self._retired_dropped + self._native_dropped()

    def _native_dropped(self) -> int:
        """Dropped so far by the current native stream."""
        return self._sub.dropped

    @property
    def capacity(self) -> int:
        """Most frames buffered before the oldest is dropped (across a rejoin, a stream that
        follows a participant holds up to twice this until the frames from before are read)."""
        return self._sub.capacity

    def statistics(self) -> StreamStatistics:
        """How many frames wait to be read, the capacity, and how many were dropped."""
        return StreamStatistics(self._buffered(), self.capacity, self.dropped)

    def _buffered(self) -> int:
        return len(self._carried) + self._native_buffered()

    def _native_buffered(self) -> int:
        """Buffered by the current native stream."""
        return self._sub.buffered()

    def _frame(self, item: Any) -> FrameT:
        raise NotImplementedError

    def _pop(self) -> FrameT | None:
        """The current native stream's next frame if one is buffered; ``trio.EndOfChannel``
        once all are read."""
        try:
            return self._frame(self._sub.receive_nowait())
        except trio.WouldBlock:
            return None

    def _take(self) -> FrameT | None:
        """The next frame if one is buffered (carried-over frames first); ``trio.EndOfChannel``
        once the current native stream ended and all is read."""
        if self._carried:
            return self._carried.popleft()
        return self._pop()

    def _park(self) -> bool:
        """Arm the wake-up for the next frame; False if there is something to read."""
        return self._sub.park_on_fd()

    def receive_nowait(self) -> FrameT:
        """The next frame if one is buffered, without waiting (and without a checkpoint).

        ``trio.WouldBlock`` if none is buffered yet, ``trio.EndOfChannel`` once the stream
        ended and every frame was read, ``trio.ClosedResourceError`` once it is closed.
        """
        try:
            frame = self._take()
        except trio.EndOfChannel:
            succession = self._succession
            if succession is None or succession.over():
                raise
            raise trio.WouldBlock from None  # between sources: receive() waits for the next
        if frame is None:
            raise trio.WouldBlock
        return frame

    async def receive_batch(self, max_frames: int = MAX_BATCH) -> list[FrameT]:
        """Every frame buffered, oldest first (at most ``max_frames``), in one wake-up.

        Waits like :meth:`receive` while none is buffered; ``trio.EndOfChannel`` once the
        stream ended and every frame was read. A consumer that fell behind catches up with
        one checkpoint instead of one per frame.
        """
        limit = _validate.integer("max_frames", max_frames, 1, MAX_BATCH)
        batch = [await self.receive()]
        while len(batch) < limit:
            try:
                frame = self._take()
            except trio.EndOfChannel:
                break  # the next call raises it
            if frame is None:
                break
            batch.append(frame)
        return batch

    async def receive(self) -> FrameT:
        """The next frame; ``trio.EndOfChannel`` once the stream ended.

        Always a checkpoint, like every trio receive: a frame found without waiting still
        yields to the scheduler once.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            try:
                frame = self._take()
            except trio.EndOfChannel:
                if not await self._next_source():
                    raise trio.EndOfChannel from None
                waited = True
                continue
            if frame is not None:
                break
            if self._park():
                await self._wait_fd()
                waited = True
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return frame

    async def _wait_fd(self) -> None:
        await trio.lowlevel.wait_readable(self._wake_fd)
        if self._wake_fd < 0:  # closed after the fd woke this task, before it ran
            raise trio.ClosedResourceError("this stream was closed")
        try:
            os.eventfd_read(self._wake_fd)
        except BlockingIOError:
            pass  # a spurious wake-up: nothing was written

    async def _next_source(self) -> bool:
        """The native stream ended: True once a stream that follows a participant has its
        next one (they came back), False if the stream ends (at once for any other)."""
        succession = self._succession
        if succession is None:
            return False
        generation = self._generation
        while True:
            if self._generation != generation:  # (before the deadline: a rejoin came in time)
                return True
            if succession.over():
                return False
            with trio.move_on_at(succession.deadline):
                await self._wait_fd()

    @property
    def _closed(self) -> bool:
        return self._wake_fd < 0

    def _wake(self) -> None:
        """Wake a consumer waiting on the eventfd (from the trio thread)."""
        if self._wake_fd >= 0:
            os.eventfd_write(self._wake_fd, 1)

    def _succeed(self, sub: _router.Subscription[Any], handle: NativeHandle) -> None:
        """Read the native stream ``handle`` from now on. The current one (it ended: its
        participant left) is released; the frames it still held are carried over and read
        first (at most ``capacity``: the oldest are dropped and counted). Fails leaving nothing."""
        sub.wake_fd = self._wake_fd
        try:
            self._adopt(handle, sub.capacity)
        except BaseException:
            sub.close()
            handle.release()
            raise
        self._carry_over()
        self._retire()
        self._sub, self._handle = sub, handle
        self._generation += 1
        self._wake()

    def _carry_over(self) -> None:
        while True:
            try:
                frame = self._pop()
            except trio.EndOfChannel:
                return
            except RtcError:  # a frame that cannot be read: as if dropped
                self._retired_dropped += 1
                continue
            if frame is None:
                return
            if len(self._carried) >= self.capacity:
                self._carried.popleft()  # its native buffer goes with it
                self._retired_dropped += 1
            self._carried.append(frame)

    def _retire(self) -> None:
        """Release the current native stream (frames it still holds count as dropped)."""
        self._retired_dropped += self._sub.dropped + self._sub.buffered()
        self._sub.close()
        self._handle.release()

    def _adopt(self, handle: NativeHandle, capacity: int) -> None:
        """What a subclass adds to read the native stream ``handle``."""

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
        self._carried.clear()  # their native buffers are released with them
        self._handle.release()  # the native stream stops


def open_native(req: ffi_pb2.FfiRequest, capacity: int) -> tuple[_router.Subscription[Any], NativeHandle]:
    """Send a stream-creating request; its handle and the subscription its events go to.

    Events that arrive before the response names the stream's handle are parked by the
    router and claimed here. On failure nothing is left behind.
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
    return sub, handle


def create_stream(
    req: ffi_pb2.FfiRequest, capacity: int,
    make: Callable[[_router.Subscription[Any], NativeHandle], StreamT],
) -> StreamT:
    """Send a stream-creating request, route its events, and wrap them with ``make``.

    On any failure nothing is left behind.
    """
    sub, handle = open_native(req, capacity)
    try:
        return make(sub, handle)
    except BaseException:
        sub.close()
        handle.release()
        raise
