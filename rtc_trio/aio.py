"""rtc_trio for asyncio code, through trio-asyncio.

The same names as :mod:`rtc_trio`, awaitable from asyncio tasks that run on a trio-asyncio
loop::

    import trio_asyncio
    import rtc_trio.aio as rtc

    async def main() -> None:               # plain asyncio code
        async with rtc.open_audio_source(queue_size_ms=0) as source:
            with rtc.LocalAudioTrack.create("mic", source) as track:
                async with rtc.open_audio_stream(track) as stream:
                    ...

    trio_asyncio.run(trio_asyncio.aio_as_trio(main))
    # or, inside trio: async with trio_asyncio.open_loop(): await trio_asyncio.aio_as_trio(main)()

Nothing here is a second stream or room layer: every object wraps the trio one. An ``async
with`` block is held by one trio task that enters and exits the trio context manager and
lives exactly as long as the block. What can finish at once does, in the asyncio task, like
``asyncio.Queue.get``: a receive that finds a frame buffered, a capture that can be sent.
What must wait runs in trio: a stream's receive in its block's own trio task (one wake-up
and one future per wait), everything else in a trio task of its own (trio-asyncio's
``trio_as_future``). Cancelling the asyncio task cancels the trio wait. Frames are the same
zero-copy :class:`AudioFrame`/:class:`VideoFrame` objects.

Wrapping more of rtc_trio: an async method is ``name = _through(_rtc.Class.name)`` on a
:class:`_Facade` (sync attributes pass through), a context manager ``_adapt(opener, Wrapper)``,
a receive channel a :class:`_Receiver` (or a :class:`_Pulled` if it has no ``receive_nowait``).
What rtc_trio calls back into asyncio code goes through trio-asyncio's ``aio_as_trio``: async
iterables of frames given to the voice toolkit (:func:`_from_asyncio`) and RPC handlers.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import deque
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import (
    Any, AsyncIterable, AsyncIterator, Awaitable, Callable, Concatenate, Coroutine, Generic,
    Mapping, ParamSpec, Protocol, Sequence, TypeVar, cast,
)

import trio

try:
    import trio_asyncio  # type: ignore[import-untyped]
except ImportError as _exc:  # pragma: no cover - depends on the install
    raise ImportError("rtc_trio.aio needs trio-asyncio: pip install 'rtc_trio[aio]'") from _exc

import rtc_trio as _rtc
from rtc_trio import (
    AudioFrame, ConnectError, LocalVideoTrack, NotUnderTrioAsyncio, RtcError, Track, TrackKind,
    TrackPublishOptions, TrackSource, VideoBufferType, VideoFrame, VideoSource, live_handles,
)
from rtc_trio import _data_streams, _native
# voice toolkit (issue 8): the sync objects are rtc_trio's own
from rtc_trio import AudioProcessingModule, AudioResampler, AudioResamplerQuality
# data streams, RPC and the rest of a participant's API (issue 9): rtc_trio's own values
from rtc_trio import (
    MAX_RPC_PAYLOAD, ByteStreamInfo, IncomingStreamsStatistics, RpcError, RpcInvocation, RtpStats,
    SessionStats, SipDtmfReceived, StatsReport, StreamError, TextStreamInfo, TranscriptionReceived,
    TranscriptionSegment,
)

__all__ = [
    "AudioFrame", "AudioSource", "AudioStream", "LocalAudioTrack", "LocalVideoTrack",
    "NotUnderTrioAsyncio", "RtcError", "Track", "TrackKind", "TrackSource", "VideoBufferType",
    "VideoFrame", "VideoSource", "VideoStream", "live_handles", "open_audio_source",
    "open_audio_stream", "open_video_source", "open_video_stream",
    # rooms
    "ConnectError", "LocalParticipant", "Room", "RoomEvents", "TrackPublishOptions", "connect",
    # voice toolkit (issue 8)
    "AudioMixer", "AudioProcessingModule", "AudioResampler", "AudioResamplerQuality",
    "ProcessedFrames", "ResampledFrames", "open_audio_mixer", "open_audio_processor",
    "open_resampled",
    # data streams, RPC, DTMF, transcriptions, stats (issue 9)
    "ByteStreamInfo", "ByteStreamReader", "ByteStreamWriter", "IncomingStreams",
    "IncomingStreamsStatistics", "MAX_RPC_PAYLOAD", "RpcError", "RpcInvocation", "RtpStats",
    "SessionStats", "SipDtmfReceived", "StatsReport", "StreamError", "TextStreamInfo",
    "TextStreamReader", "TextStreamWriter", "TranscriptionReceived", "TranscriptionSegment",
    "track_stats",
]

T = TypeVar("T")
W = TypeVar("W")
F = TypeVar("F", AudioFrame, VideoFrame)
P = ParamSpec("P")
Inner = TypeVar("Inner")
T_co = TypeVar("T_co", covariant=True)

_HOW = (
    "rtc_trio.aio runs on trio through trio-asyncio: start the program with "
    "trio_asyncio.run(trio_asyncio.aio_as_trio(main)), or from trio code with "
    "'async with trio_asyncio.open_loop(): await trio_asyncio.aio_as_trio(main)()'"
)

YIELD_EVERY = 16
"""A receive or capture that completes at once does not suspend the asyncio task (as
``asyncio.Queue.get`` or ``StreamWriter.drain`` do); the 16th such call in a row yields to the
loop first, so a task that never has to wait cannot starve the others. Every call that
suspends is a point where ``Task.cancel()`` lands with nothing done."""


class _Loop(Protocol):
    """What this module uses of ``trio_asyncio.TrioEventLoop`` (trio-asyncio has no types)."""

    def trio_as_future(self, proc: Callable[..., Awaitable[T]], *args: Any) -> asyncio.Future[T]: ...

    def create_future(self) -> asyncio.Future[Any]: ...


def _bridge() -> _Loop:
    """The running trio-asyncio loop, or a clear error saying how to get one."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise NotUnderTrioAsyncio(f"no asyncio event loop is running; {_HOW}") from None
    if not isinstance(loop, trio_asyncio.TrioEventLoop):
        note = (" (asyncio.run() makes one once trio_asyncio is imported)"
                if isinstance(loop, trio_asyncio.BaseTrioEventLoop) else "")
        raise NotUnderTrioAsyncio(f"the running loop is a {type(loop).__name__}{note}, "
                                  f"not a trio-asyncio loop inside trio; {_HOW}")
    _task()
    return cast(_Loop, loop)


def _task() -> asyncio.Task[Any]:
    """The calling asyncio task; trio code (no task) is refused."""
    task = asyncio.current_task()
    if task is None:
        raise NotUnderTrioAsyncio("rtc_trio.aio objects are used from asyncio tasks; trio code uses rtc_trio")
    return task


async def _call(loop: _Loop, proc: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await proc(*args)`` in a trio task; cancelling the awaiting asyncio task cancels it."""
    task = _task()
    asked = task.cancelling()
    future = loop.trio_as_future(proc, *args)
    try:
        result = await future
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        if task.cancelling() > asked:  # see below
            raise asyncio.CancelledError from error
        raise
    finally:
        # trio-asyncio hooks the future's cancel with a closure over its handle, which holds
        # the future: a cycle that would keep a received frame's native buffer until gc runs.
        try:
            del future.cancel
        except AttributeError:  # pragma: no cover - a trio-asyncio without the hook
            pass
    # trio-asyncio drops a Task.cancel() that arrives while the trio call finishes without
    # raising trio.Cancelled (e.g. in a shielded checkpoint); asyncio code expects to see it.
    if task.cancelling() > asked:
        del result  # a received frame: its native buffer goes now, not with the traceback
        raise asyncio.CancelledError
    return result


def _through(method: Callable[Concatenate[Inner, P], Awaitable[T]]
             ) -> Callable[Concatenate[_Facade[Inner], P], Coroutine[Any, Any, T]]:
    """The asyncio form of the trio async ``method``: run on the wrapped object in a trio task."""

    async def bridged(facade: _Facade[Inner], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await _call(facade._loop, functools.partial(method, facade._trio, *args, **kwargs))

    functools.update_wrapper(bridged, method)
    bridged.__doc__ = f"Awaitable from asyncio: {method.__doc__ or ''}"
    return bridged


class _Passthrough:
    """Attributes an asyncio-facing object does not define (sync methods, state) are those of
    the trio object ``_trio`` it wraps."""

    _trio: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_trio":
            raise AttributeError(name)
        return getattr(self._trio, name)

    def __repr__(self) -> str:
        return f"aio.{self._trio!r}"


class _Facade(_Passthrough, Generic[Inner]):
    """An asyncio-facing object over the trio object ``_trio``: attributes it does not define
    (sync methods, state) are the trio object's; async methods are added with :func:`_through`."""

    def __init__(self, inner: Inner, link: _Link) -> None:
        self._trio = inner
        self._link = link
        self._loop = link.loop


class _Link:
    """What a block's asyncio object shares with the trio task holding the block.

    ``wait`` runs a trio wait in that task, which is parked between waits: one reschedule
    and one future per wait instead of a new trio task. It serves one object's receives
    only (a wait can take forever: nothing else may queue behind it).
    """

    def __init__(self, loop: _Loop) -> None:
        self.loop = loop
        self._jobs: deque[tuple[Callable[[], Awaitable[None]], asyncio.Future[None]]] = deque()
        self._running: asyncio.Future[None] | None = None
        self._scope: trio.CancelScope | None = None
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        self._closed = False
        self.on_close: list[Callable[[], None]] = []  # what the block's object drops when it ends

    # -- asyncio side -------------------------------------------------------------------
    async def wait(self, proc: Callable[[], Awaitable[None]]) -> None:
        """``await proc()`` in the block's trio task; cancelling the caller cancels it."""
        if self._closed:
            raise trio.ClosedResourceError("the block has ended")
        future: asyncio.Future[None] = self.loop.create_future()
        self._jobs.append((proc, future))
        self._wake()
        try:
            await future
        except asyncio.CancelledError:
            self._withdraw(future)
            raise

    def _withdraw(self, future: asyncio.Future[None]) -> None:
        if future is self._running and self._scope is not None:
            self._scope.cancel()
        for job in self._jobs:
            if job[1] is future:
                self._jobs.remove(job)
                break

    def _wake(self) -> None:
        if self._parked and self._task is not None:
            self._parked = False
            trio.lowlevel.reschedule(self._task)

    def close(self) -> None:
        """The block ends: waits still queued or running end with ``ClosedResourceError``."""
        self._closed = True
        for drop in self.on_close:
            drop()
        while self._jobs:
            _, future = self._jobs.popleft()
            if not future.done():
                future.set_exception(trio.ClosedResourceError("the block has ended"))
        if self._scope is not None:
            self._scope.cancel()
        self._wake()

    # -- trio side: the task holding the block --------------------------------------------
    async def serve(self) -> None:
        """Run the waits handed over, one at a time, until :meth:`close`."""
        self._task = trio.lowlevel.current_task()
        while not self._closed:
            if not self._jobs:
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._abort)
                continue
            proc, future = self._jobs.popleft()
            self._running = future
            scope = self._scope = trio.CancelScope()
            error: Exception | None = None
            done = False
            try:
                with scope:
                    await proc()
                    done = True
            except Exception as raised:
                error = raised
            finally:
                self._scope = self._running = None
                if future.done():
                    pass  # withdrawn: its caller was cancelled
                elif error is not None:
                    future.set_exception(error)
                elif done:
                    future.set_result(None)
                else:  # cancelled by close(), or from outside (then that goes on up)
                    future.set_exception(trio.ClosedResourceError("the block has ended"))
        self._task = None

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED


def _only(error: BaseException, body_error: BaseException | None) -> bool:
    """``error`` is the block's own exception coming back (alone or in exception groups)."""
    if error is body_error:
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_only(inner, body_error) for inner in error.exceptions)
    return False


class _Block(Generic[T, W]):
    """An asyncio ``async with`` over a trio async context manager.

    One trio task enters the trio manager, serves the block's waits (:class:`_Link`) until the
    asyncio block ends, and exits the manager with the block's exception: both ends run in the
    same trio task (as nurseries require), and the task ends with the block. ``wrap`` turns
    the trio object into the asyncio-facing one.
    """

    def __init__(self, cm: AbstractAsyncContextManager[T], wrap: Callable[[T, _Link], W]) -> None:
        self._cm = cm
        self._wrap = wrap
        self._held: asyncio.Future[bool] | None = None
        self._link: _Link | None = None
        self._exc_info: tuple[type[BaseException] | None, BaseException | None, TracebackType | None] = (
            None, None, None)

    async def __aenter__(self) -> W:
        loop = _bridge()
        if self._held is not None:
            raise RuntimeError("this context manager was already entered")
        link = self._link = _Link(loop)
        entered: asyncio.Future[T] = loop.create_future()
        held = self._held = loop.trio_as_future(self._hold, entered, link)
        try:
            await asyncio.wait((entered, held), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            held.cancel()  # cancels the trio task: it leaves the manager if it got in
            await asyncio.wait((held,))
            if not held.cancelled():
                held.exception()  # an error from entering is superseded by the cancellation
            raise
        if not entered.done():
            held.result()  # the trio side failed to enter: its exception, same type
            raise RuntimeError("the trio context manager ended without entering")  # pragma: no cover
        try:
            return self._wrap(entered.result(), link)
        except BaseException as error:  # the block will not run: the trio side leaves now
            await self.__aexit__(type(error), error, error.__traceback__)
            raise

    async def __aexit__(self, typ: type[BaseException] | None, value: BaseException | None,
                        tb: TracebackType | None) -> bool:
        if self._held is None or self._link is None:
            raise RuntimeError("this context manager was not entered")
        self._exc_info = (typ, value, tb)
        self._link.close()
        # A Task.cancel() here cancels the trio task; the await returns once it has unwound.
        return await self._held

    async def _hold(self, entered: asyncio.Future[T], link: _Link) -> bool:
        """The trio task: enter, report, serve the block's waits until it ends, exit."""
        value = await self._cm.__aenter__()
        try:
            entered.set_result(value)
            await link.serve()
        except BaseException as error:  # cancelled from the asyncio side before the block ended
            link.close()
            if not await self._cm.__aexit__(type(error), error, error.__traceback__):
                raise
            return False
        typ, body_error, tb = self._exc_info
        try:
            return bool(await self._cm.__aexit__(typ, body_error, tb))
        except BaseException as error:
            if body_error is not None and _only(error, body_error):
                return False  # asyncio re-raises the block's exception itself
            raise


def _same(value: T, _: _Link) -> T:
    return value


class _Fair:
    """Counts calls that completed without suspending the asyncio task (see YIELD_EVERY)."""

    _streak = 0

    async def _turn(self) -> None:
        """Yield to the loop if this is the YIELD_EVERY-th call in a row that did not."""
        self._streak += 1
        if self._streak >= YIELD_EVERY:
            self._streak = 0
            await asyncio.sleep(0)


def _from_asyncio(frames: AsyncIterable[T], loop: _Loop) -> AsyncIterable[T]:
    """What rtc_trio reads in trio for an asyncio async iterable (anything else is passed on
    as it is, for rtc_trio to refuse): a trio async generator that fetches each item in an
    asyncio task, which the trio side's cancellation cancels. Closing it closes ``frames``
    if that is an async generator, as rtc_trio closes those it is given."""
    if not hasattr(frames, "__aiter__"):
        return frames
    return _asyncio_items(frames, loop)


async def _asyncio_items(frames: AsyncIterable[T], loop: _Loop) -> AsyncIterator[T]:
    iterator = aiter(frames)
    step = trio_asyncio.aio_as_trio(iterator.__anext__, loop=loop)
    try:
        while True:
            try:
                item = await step()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if inspect.isasyncgen(iterator):  # closed in asyncio, even in a cancelled scope
            with trio.CancelScope(shield=True):
                await trio_asyncio.aio_as_trio(iterator.aclose, loop=loop)()


class AudioSource(_Fair):
    """:class:`rtc_trio.AudioSource` for asyncio; create it with :func:`open_audio_source`."""

    def __init__(self, source: _rtc.AudioSource, link: _Link) -> None:
        self._source = source
        self._loop = link.loop

    @property
    def sample_rate(self) -> int:
        """Samples per second the source takes."""
        return self._source.sample_rate

    @property
    def num_channels(self) -> int:
        """Channels of the frames the source takes."""
        return self._source.num_channels

    @property
    def queue_size_ms(self) -> int:
        """The native queue's length in ms (0: no queue, 10 ms frames only)."""
        return self._source.queue_size_ms

    @property
    def queued_duration(self) -> float:
        """Seconds of captured audio not yet played out by the native queue."""
        return self._source.queued_duration

    async def capture_frame(self, frame: AudioFrame) -> None:
        """Queue ``frame``; waits while the native queue is full (``queue_size_ms``).

        Sent at once, without suspending the task, when the capture before it completed
        (see :data:`YIELD_EVERY`); otherwise it waits in trio for that one. As in trio, a
        cancelled call may already have sent the frame (or, for a frame longer than the
        queue, its first pieces): what was sent stays queued.
        """
        _task()
        await self._turn()
        source = self._source
        source._check_frame(frame)
        if not source._busy and source._try_send(frame, _native.next_async_id()):
            return
        self._streak = 0
        await _call(self._loop, source.capture_frame, frame)

    def clear_queue(self) -> None:
        """Discard everything captured so far that has not played yet, the capture in
        flight too (see :meth:`rtc_trio.AudioSource.clear_queue`)."""
        self._source.clear_queue()

    async def wait_for_playout(self) -> None:
        """Return once the last sample captured has left the source for its tracks;
        cancelled, it leaves the queue as it was."""
        await _call(self._loop, self._source.wait_for_playout)

    async def speak(self, frames: AsyncIterable[AudioFrame]) -> None:
        """Play ``frames`` (an asyncio async iterable) to their end, then wait for the playout.

        ``Task.cancel()`` (barge-in) stops it at once: the queue is cleared, so the source is
        empty whether it returned, was cancelled or raised, and an async generator passed
        in is closed. Anything but an async iterable is a ``TypeError``.
        """
        await _call(self._loop, self._source.speak, _from_asyncio(frames, self._loop))


class LocalAudioTrack(_rtc.LocalAudioTrack):
    """:class:`rtc_trio.LocalAudioTrack` that also takes an :class:`AudioSource` of this module."""

    @classmethod
    def create(cls, name: str, source: AudioSource | _rtc.AudioSource) -> LocalAudioTrack:
        """A track named ``name`` playing what ``source`` captures; use it as a ``with`` block."""
        inner = source._source if isinstance(source, AudioSource) else source
        return cast(LocalAudioTrack, super().create(name, inner))


class _Channel(Protocol[T_co]):
    """What :class:`_Receiver` uses of a trio receive channel."""

    def receive_nowait(self) -> T_co: ...

    async def receive(self) -> T_co: ...


class _Receiver(_Fair, Generic[T]):
    """A trio receive channel for asyncio: ``receive``, ``receive_nowait``, ``async for``.

    What is buffered comes at once (see :data:`YIELD_EVERY`); a wait runs the trio receive
    in the block's trio task when there is a block (``link.wait``), else in a trio task of
    its own. An item received for a wait that was cancelled is kept for the next receive.
    """

    def __init__(self, channel: _Channel[T], link: _Link, own_block: bool) -> None:
        self._channel = channel
        self._link = link
        self._loop = link.loop
        self._own_block = own_block
        self._kept: deque[T] = deque()
        if own_block:
            link.on_close.append(self._kept.clear)  # frames kept go with the block, like buffered ones

    def receive_nowait(self) -> T:
        """The next item if one is buffered: ``trio.WouldBlock`` if none, ``trio.EndOfChannel``
        at the end, ``trio.ClosedResourceError`` once closed."""
        if self._kept:
            return self._kept.popleft()
        return self._channel.receive_nowait()

    async def receive(self) -> T:
        """The next item, waiting for it if need be; ``trio.EndOfChannel`` at the end."""
        _task()
        await self._turn()
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                pass
            self._streak = 0
            if self._own_block:
                await self._link.wait(self._fetch)
            else:
                await _call(self._loop, self._fetch)

    async def _fetch(self) -> None:
        """Trio side: wait for the next item and keep it for :meth:`receive`."""
        self._kept.append(await self._channel.receive())

    def __aiter__(self) -> _Receiver[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class _Stream(_Receiver[F]):
    _stream: _rtc.AudioStream | _rtc.VideoStream

    def __init__(self, stream: _rtc.AudioStream | _rtc.VideoStream, link: _Link) -> None:
        super().__init__(cast(Any, stream), link, own_block=True)
        self._stream = stream

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer fell behind."""
        return self._stream.dropped

    @property
    def capacity(self) -> int:
        """Most frames buffered before the oldest is dropped."""
        return self._stream.capacity

    def statistics(self) -> _rtc.StreamStatistics:
        """How many frames wait to be read, the capacity, and how many were dropped."""
        stats = self._stream.statistics()
        return _rtc.StreamStatistics(stats.buffered + len(self._kept), stats.capacity, stats.dropped)

    async def receive_batch(self, max_frames: int = 1 << 20) -> list[F]:
        """Every frame buffered, oldest first (at most ``max_frames``), waiting for the first
        if none is; ``trio.EndOfChannel`` once the stream ended and every frame was read."""
        if not _rtc._validate.is_integer(max_frames):
            raise TypeError(f"max_frames must be an int, not {type(max_frames).__name__}")
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        batch = [await self.receive()]
        while len(batch) < max_frames:
            try:
                batch.append(self.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        return batch


class AudioStream(_Stream[AudioFrame]):
    """Iterate it to receive :class:`AudioFrame` objects; see :func:`open_audio_stream`."""

    _stream: _rtc.AudioStream

    @property
    def sample_rate(self) -> int:
        """Samples per second of the frames received."""
        return self._stream.sample_rate

    @property
    def num_channels(self) -> int:
        """Channels of the frames received."""
        return self._stream.num_channels


class VideoStream(_Stream[VideoFrame]):
    """Iterate it to receive :class:`VideoFrame` objects; see :func:`open_video_stream`."""

    _stream: _rtc.VideoStream

    @property
    def format(self) -> VideoBufferType:
        """The buffer type of the frames received."""
        return self._stream.format


def _adapt(opener: Callable[P, AbstractAsyncContextManager[T]],
           wrap: Callable[[T, _Link], W]) -> Callable[P, AbstractAsyncContextManager[W]]:
    """The asyncio form of a trio ``open_*``: the same parameters, its block held by a trio task."""

    def open_(*args: P.args, **kwargs: P.kwargs) -> AbstractAsyncContextManager[W]:
        return _Block(opener(*args, **kwargs), wrap)

    functools.update_wrapper(open_, opener)
    open_.__module__ = __name__
    open_.__doc__ = (f":func:`rtc_trio.{opener.__name__}` for asyncio tasks (same parameters).\n\n"
                     f"{opener.__doc__ or ''}")
    return open_


open_audio_source = _adapt(_rtc.open_audio_source, AudioSource)
open_video_source = _adapt(_rtc.open_video_source, _same)  # VideoSource has no async method
open_audio_stream = _adapt(_rtc.open_audio_stream, AudioStream)
open_video_stream = _adapt(_rtc.open_video_stream, VideoStream)


# -- rooms ---------------------------------------------------------------------------------

class RoomEvents(_Receiver[_rtc.RoomEvent]):
    """:class:`rtc_trio.RoomEvents` for asyncio: ``async for event in room.events()``."""

    def __init__(self, events: _rtc.RoomEvents, link: _Link) -> None:
        super().__init__(events, link, own_block=False)
        self._events = events

    @property
    def capacity(self) -> int:
        """Most events buffered before the oldest is dropped."""
        return self._events.capacity

    @property
    def dropped(self) -> int:
        """Events dropped because this reader fell behind."""
        return self._events.dropped

    def statistics(self) -> _rtc.RoomEventsStatistics:
        """How many events wait to be read, the capacity, and how many were dropped."""
        return self._events.statistics()

    def close(self) -> None:
        """Stop buffering; a blocked receive and every later one raise ``trio.ClosedResourceError``."""
        self._kept.clear()
        self._events.close()

    async def aclose(self) -> None:
        """:meth:`close`, as an async resource."""
        self.close()

    async def __aenter__(self) -> RoomEvents:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()

    def __enter__(self) -> RoomEvents:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class LocalParticipant(_Facade[_rtc.LocalParticipant]):
    """:class:`rtc_trio.LocalParticipant` for asyncio: the same attributes, awaitable methods."""

    publish_track = _through(_rtc.LocalParticipant.publish_track)
    unpublish_track = _through(_rtc.LocalParticipant.unpublish_track)
    publish_data = _through(_rtc.LocalParticipant.publish_data)
    set_metadata = _through(_rtc.LocalParticipant.set_metadata)
    set_name = _through(_rtc.LocalParticipant.set_name)
    set_attributes = _through(_rtc.LocalParticipant.set_attributes)
    # data streams, RPC, DTMF and transcriptions (issue 9)
    send_text = _through(_rtc.LocalParticipant.send_text)
    send_bytes = _through(_rtc.LocalParticipant.send_bytes)
    send_file = _through(_rtc.LocalParticipant.send_file)
    perform_rpc = _through(_rtc.LocalParticipant.perform_rpc)
    publish_dtmf = _through(_rtc.LocalParticipant.publish_dtmf)
    publish_transcription = _through(_rtc.LocalParticipant.publish_transcription)

    def stream_text(self, *, topic: str = "", destination_identities: Sequence[str] | None = None,
                    attributes: Mapping[str, str] | None = None
                    ) -> AbstractAsyncContextManager[TextStreamWriter]:
        """:meth:`rtc_trio.LocalParticipant.stream_text` for asyncio: a block yielding a writer
        (``await writer.write(text)``); ending by an exception or ``Task.cancel()`` closes the
        stream with an error its receivers see as :class:`StreamError`."""
        return _Block(self._trio.stream_text(
            topic=topic, destination_identities=destination_identities, attributes=attributes),
            TextStreamWriter)

    def stream_bytes(self, *, topic: str = "", name: str = "",
                     mime_type: str = _data_streams.DEFAULT_MIME_TYPE, total_size: int | None = None,
                     destination_identities: Sequence[str] | None = None,
                     attributes: Mapping[str, str] | None = None
                     ) -> AbstractAsyncContextManager[ByteStreamWriter]:
        """:meth:`stream_text` for bytes: ``await writer.write(data)``."""
        return _Block(self._trio.stream_bytes(
            topic=topic, name=name, mime_type=mime_type, total_size=total_size,
            destination_identities=destination_identities, attributes=attributes), ByteStreamWriter)

    def serve_rpc(self, handlers: Mapping[str, AsyncioRpcHandler]) -> AbstractAsyncContextManager[None]:
        """:meth:`rtc_trio.LocalParticipant.serve_rpc` with asyncio handlers, for the length of
        an ``async with`` block.

        Each call runs the handler (an asyncio coroutine function) as an asyncio task for a
        trio task of the block's nursery: it is cancelled (``asyncio.CancelledError`` inside)
        at the caller's deadline or when the block ends, and what it raises becomes an RPC
        error as in trio (:class:`RpcError` as is, anything else APPLICATION_ERROR).
        """
        return _Block(self._trio.serve_rpc(_asyncio_handlers(handlers, self._loop)), _same)


class Room(_Facade[_rtc.Room]):
    """:class:`rtc_trio.Room` for asyncio; create it with :func:`connect`.

    Its state (``name``, ``sid``, ``connection_state``, ``remote_participants``...) is the
    trio room's; participants, publications, tracks and events are rtc_trio's own objects,
    which this module's openers take (``open_audio_stream(participant=..., ...)``).
    """

    def __init__(self, room: _rtc.Room, link: _Link) -> None:
        super().__init__(room, link)
        self.local_participant = LocalParticipant(room.local_participant, link)

    def events(self, *, capacity: int = 256) -> RoomEvents:
        """:meth:`rtc_trio.Room.events` for asyncio: this room's events from now on."""
        return RoomEvents(self._trio.events(capacity=capacity), self._link)

    get_stats = _through(_rtc.Room.get_stats)

    def text_streams(self, topic: str = "", *, capacity: int = _data_streams.DEFAULT_CAPACITY,
                     buffer_bytes: int = _data_streams.DEFAULT_BUFFER_BYTES
                     ) -> AbstractAsyncContextManager[IncomingStreams[TextStreamReader]]:
        """:meth:`rtc_trio.Room.text_streams` for asyncio: a block yielding the readers of the
        text streams sent on ``topic`` (``async for reader in incoming``)."""
        return _Block(self._trio.text_streams(topic, capacity=capacity, buffer_bytes=buffer_bytes),
                      functools.partial(IncomingStreams[TextStreamReader], wrap=TextStreamReader))

    def byte_streams(self, topic: str = "", *, capacity: int = _data_streams.DEFAULT_CAPACITY,
                     buffer_bytes: int = _data_streams.DEFAULT_BUFFER_BYTES
                     ) -> AbstractAsyncContextManager[IncomingStreams[ByteStreamReader]]:
        """:meth:`text_streams` for byte streams (and files): readers of ``bytes`` chunks."""
        return _Block(self._trio.byte_streams(topic, capacity=capacity, buffer_bytes=buffer_bytes),
                      functools.partial(IncomingStreams[ByteStreamReader], wrap=ByteStreamReader))


connect = _adapt(_rtc.connect, Room)


async def track_stats(track: Track) -> StatsReport:
    """``track.get_stats()`` for asyncio: the statistics of a local or a subscribed remote
    track (tracks are rtc_trio's own objects; their async method is trio's)."""
    return await _call(_bridge(), track.get_stats)


# -- receive channels without receive_nowait -----------------------------------------------

class _Pulled(_Facade[Any], Generic[T]):
    """A trio receive channel that has no ``receive_nowait``, for asyncio: each receive
    waits in a trio task of its own; ``async for`` ends at ``trio.EndOfChannel``."""

    async def receive(self) -> T:
        """The next item; ``trio.EndOfChannel`` at the end."""
        return cast(T, await _call(self._loop, self._trio.receive))

    async def aclose(self) -> None:
        """Close it, as the trio object's ``aclose()`` does."""
        await _call(self._loop, self._trio.aclose)

    def __aiter__(self) -> _Pulled[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


# -- voice toolkit (issue 8) ---------------------------------------------------------------

class ResampledFrames(_Pulled[AudioFrame]):
    """:class:`rtc_trio.ResampledFrames` for asyncio: ``async for frame in frames``; see
    :func:`open_resampled`."""


class ProcessedFrames(_Pulled[AudioFrame]):
    """:class:`rtc_trio.ProcessedFrames` for asyncio: ``async for frame in cleaned``; see
    :func:`open_audio_processor`."""


def open_resampled(frames: AsyncIterable[AudioFrame], output_rate: int, *,
                   quality: AudioResamplerQuality = AudioResamplerQuality.MEDIUM
                   ) -> AbstractAsyncContextManager[ResampledFrames]:
    """:func:`rtc_trio.open_resampled` for asyncio: resample ``frames``, any asyncio async
    iterable of :class:`AudioFrame` (an asyncio generator, an :class:`AudioStream`...), inside
    a block. Each input frame is fetched by an asyncio task when a receive needs it; leaving
    the block releases the resampler and closes ``frames`` if it is an async generator."""
    loop = _bridge()
    return _Block(_rtc.open_resampled(_from_asyncio(frames, loop), output_rate, quality=quality),
                  ResampledFrames)


def open_audio_processor(
    near: AsyncIterable[AudioFrame], far: AsyncIterable[AudioFrame] | None = None, *,
    echo_cancellation: bool = True, noise_suppression: bool = True,
    high_pass_filter: bool = False, auto_gain_control: bool = False, stream_delay_ms: int = 0,
) -> AbstractAsyncContextManager[ProcessedFrames]:
    """:func:`rtc_trio.open_audio_processor` for asyncio: clean ``near`` against ``far`` (asyncio
    async iterables of 10 ms frames) inside a block, with the same alignment and options."""
    loop = _bridge()
    return _Block(_rtc.open_audio_processor(
        _from_asyncio(near, loop), None if far is None else _from_asyncio(far, loop),
        echo_cancellation=echo_cancellation, noise_suppression=noise_suppression,
        high_pass_filter=high_pass_filter, auto_gain_control=auto_gain_control,
        stream_delay_ms=stream_delay_ms), ProcessedFrames)


class AudioMixer(_Receiver[AudioFrame], _Passthrough):
    """:class:`rtc_trio.AudioMixer` for asyncio; see :func:`open_audio_mixer`.

    ``async for frame in mixer`` yields the mix (``receive``, ``receive_nowait`` too); its
    other attributes (``end_input()``, ``queued``, ``blocksize``...) are the trio mixer's.
    Inputs are asyncio async iterables: each is read by a trio task of the block, which
    fetches every frame in an asyncio task.
    """

    def __init__(self, mixer: _rtc.AudioMixer, link: _Link) -> None:
        super().__init__(cast(_Channel[AudioFrame], mixer._receive), link, own_block=True)
        self._trio = mixer
        self._inputs: dict[int, AsyncIterable[AudioFrame]] = {}  # what the trio mixer reads, by id()

    def add_stream(self, frames: AsyncIterable[AudioFrame]) -> None:
        """Mix ``frames``, an asyncio async iterable of :class:`AudioFrame`, from now on, until
        it ends or :meth:`remove_stream` removes it."""
        reading = self._trio._inputs
        for key, inner in list(self._inputs.items()):
            if id(inner) not in reading:  # ended, or refused
                del self._inputs[key]
        inner = self._inputs.get(id(frames)) or _from_asyncio(frames, self._loop)
        self._trio.add_stream(inner)  # refuses as rtc_trio does (closed, not iterable, twice)
        self._inputs[id(frames)] = inner

    def remove_stream(self, frames: AsyncIterable[AudioFrame]) -> None:
        """Stop mixing ``frames`` now (closing it if it is an async generator); nothing if it
        is no input."""
        inner = self._inputs.pop(id(frames), None)
        if inner is not None:
            self._trio.remove_stream(inner)

    async def aclose(self) -> None:
        """Stop mixing and reading the inputs; :meth:`receive` raises ``ClosedResourceError``."""
        await _call(self._loop, self._trio.aclose)


open_audio_mixer = _adapt(_rtc.open_audio_mixer, AudioMixer)


# -- data streams (issue 9) ----------------------------------------------------------------

class TextStreamWriter(_Facade[_rtc.TextStreamWriter]):
    """:class:`rtc_trio.TextStreamWriter` for asyncio: ``await writer.write(text)``; ``info``
    is its header."""

    write = _through(_rtc.TextStreamWriter.write)


class ByteStreamWriter(_Facade[_rtc.ByteStreamWriter]):
    """:class:`rtc_trio.ByteStreamWriter` for asyncio: ``await writer.write(data)``; ``info``
    is its header."""

    write = _through(_rtc.ByteStreamWriter.write)


class _StreamReader(_Pulled[T]):
    async def read_all(self) -> T:
        """The rest of the stream, joined, once it ended well (raises like :meth:`receive`)."""
        return cast(T, await _call(self._loop, self._trio.read_all))


class TextStreamReader(_StreamReader[str]):
    """:class:`rtc_trio.TextStreamReader` for asyncio: ``async for chunk in reader`` or
    ``await reader.read_all()``; ``info``, ``close()`` are the trio reader's."""


class ByteStreamReader(_StreamReader[bytes]):
    """:class:`rtc_trio.ByteStreamReader` for asyncio: ``async for chunk in reader`` or
    ``await reader.read_all()``; ``info``, ``close()`` are the trio reader's."""


R = TypeVar("R", bound=_StreamReader[Any])


class IncomingStreams(_Receiver[R], _Passthrough):
    """:class:`rtc_trio.IncomingStreams` for asyncio: ``async for reader in incoming``, as
    ``room.text_streams(topic)`` (or ``byte_streams``) yields it; ``statistics()``,
    ``dropped``, ``capacity`` are the trio channel's."""

    def __init__(self, incoming: _rtc.IncomingStreams[Any], link: _Link, *,
                 wrap: Callable[[Any, _Link], R]) -> None:
        super().__init__(cast(Any, incoming), link, own_block=True)
        self._trio = incoming
        self._wrap: Callable[[Any, _Link], R] = wrap

    def receive_nowait(self) -> R:
        """The oldest waiting reader: ``trio.WouldBlock`` if none, ``trio.EndOfChannel`` once
        the room disconnected."""
        reader: Any = super().receive_nowait()  # a trio reader, made asyncio's here
        return self._wrap(reader, self._link)

    def statistics(self) -> IncomingStreamsStatistics:
        """How many readers wait to be taken, the capacity, and how many were dropped."""
        stats = self._trio.statistics()
        return IncomingStreamsStatistics(stats.waiting + len(self._kept), stats.capacity, stats.dropped)

    def close(self) -> None:
        """Stop listening: every reader given out or waiting is closed."""
        self._kept.clear()
        self._trio.close()

    async def aclose(self) -> None:
        """:meth:`close`, as an async resource."""
        self.close()


# -- RPC (issue 9) -------------------------------------------------------------------------

AsyncioRpcHandler = Callable[[RpcInvocation], Coroutine[Any, Any, "str | None"]]


def _asyncio_handlers(handlers: object, loop: _Loop) -> Any:
    """``handlers`` with each asyncio handler made a trio one (what is not a mapping or not
    callable is left for rtc_trio to refuse)."""
    if not isinstance(handlers, Mapping):
        return handlers
    return {method: _in_asyncio(handler, loop) if callable(handler) else handler
            for method, handler in handlers.items()}


def _in_asyncio(handler: AsyncioRpcHandler, loop: _Loop) -> Callable[[RpcInvocation], Awaitable[str | None]]:
    """A trio handler running ``handler`` as an asyncio task, cancelled with the trio task."""
    call = trio_asyncio.aio_as_trio(handler, loop=loop)

    async def run(invocation: RpcInvocation) -> str | None:
        try:
            return cast("str | None", await call(invocation))
        except asyncio.CancelledError as error:  # its own: trio's cancellation is trio.Cancelled
            raise RuntimeError("the RPC handler raised asyncio.CancelledError") from error

    return run
