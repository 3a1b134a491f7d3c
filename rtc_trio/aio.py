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

Nothing here is a second stream layer: every object wraps the trio one and every await runs
the trio method in a trio task (trio-asyncio's ``trio_as_future``) that the asyncio caller
awaits, so cancelling the asyncio task cancels the trio call. An ``async with`` block is held
by one trio task that enters and exits the trio context manager and lives exactly as long as
the block. Frames are the same zero-copy :class:`AudioFrame`/:class:`VideoFrame` objects.
"""

from __future__ import annotations

import asyncio
import functools
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Awaitable, Callable, Generic, ParamSpec, Protocol, TypeVar, cast

import trio

try:
    import trio_asyncio  # type: ignore[import-untyped]
except ImportError as _exc:  # pragma: no cover - depends on the install
    raise ImportError("rtc_trio.aio needs trio-asyncio: pip install 'rtc_trio[aio]'") from _exc

import rtc_trio as _rtc
from rtc_trio import (
    AudioFrame, LocalVideoTrack, NotUnderTrioAsyncio, RtcError, Track, TrackKind, TrackSource,
    VideoBufferType, VideoFrame, VideoSource, live_handles,
)

__all__ = [
    "AudioFrame", "AudioSource", "AudioStream", "LocalAudioTrack", "LocalVideoTrack",
    "NotUnderTrioAsyncio", "RtcError", "Track", "TrackKind", "TrackSource", "VideoBufferType",
    "VideoFrame", "VideoSource", "VideoStream", "live_handles", "open_audio_source",
    "open_audio_stream", "open_video_source", "open_video_stream",
]

T = TypeVar("T")
W = TypeVar("W")
F = TypeVar("F", AudioFrame, VideoFrame)
P = ParamSpec("P")

_HOW = (
    "rtc_trio.aio runs on trio through trio-asyncio: start the program with "
    "trio_asyncio.run(trio_asyncio.aio_as_trio(main)), or from trio code with "
    "'async with trio_asyncio.open_loop(): await trio_asyncio.aio_as_trio(main)()'"
)


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
    if asyncio.current_task() is None:
        raise NotUnderTrioAsyncio("rtc_trio.aio is for asyncio tasks; trio code uses rtc_trio itself")
    return cast(_Loop, loop)


async def _call(loop: _Loop, proc: Callable[..., Awaitable[T]], *args: Any) -> T:
    """``await proc(*args)`` in a trio task; cancelling the awaiting asyncio task cancels it."""
    task = asyncio.current_task()
    if task is None:
        raise NotUnderTrioAsyncio("rtc_trio.aio objects are used from asyncio tasks; trio code uses rtc_trio")
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


def _only(error: BaseException, body_error: BaseException | None) -> bool:
    """``error`` is the block's own exception coming back (alone or in exception groups)."""
    if error is body_error:
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_only(inner, body_error) for inner in error.exceptions)
    return False


class _Block(Generic[T, W]):
    """An asyncio ``async with`` over a trio async context manager.

    One trio task enters the trio manager, waits for the asyncio block to end and exits the
    manager with the block's exception: both ends run in the same trio task (as nurseries
    require), and the task ends with the block. ``wrap`` turns the trio object into the
    asyncio-facing one.
    """

    def __init__(self, cm: AbstractAsyncContextManager[T], wrap: Callable[[T, _Loop], W]) -> None:
        self._cm = cm
        self._wrap = wrap
        self._held: asyncio.Future[bool] | None = None
        self._leave = trio.Event()
        self._exc_info: tuple[type[BaseException] | None, BaseException | None, TracebackType | None] = (
            None, None, None)

    async def __aenter__(self) -> W:
        loop = _bridge()
        if self._held is not None:
            raise RuntimeError("this context manager was already entered")
        entered: asyncio.Future[T] = loop.create_future()
        held = self._held = loop.trio_as_future(self._hold, entered)
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
            return self._wrap(entered.result(), loop)
        except BaseException as error:  # the block will not run: the trio side leaves now
            await self.__aexit__(type(error), error, error.__traceback__)
            raise

    async def __aexit__(self, typ: type[BaseException] | None, value: BaseException | None,
                        tb: TracebackType | None) -> bool:
        if self._held is None:
            raise RuntimeError("this context manager was not entered")
        self._exc_info = (typ, value, tb)
        self._leave.set()
        # A Task.cancel() here cancels the trio task; the await returns once it has unwound.
        return await self._held

    async def _hold(self, entered: asyncio.Future[T]) -> bool:
        """The trio task: enter, report, wait for the block to end, exit."""
        value = await self._cm.__aenter__()
        try:
            entered.set_result(value)
            await self._leave.wait()
        except BaseException as error:  # cancelled from the asyncio side before the block ran
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


def _same(value: T, _: _Loop) -> T:
    return value


class AudioSource:
    """:class:`rtc_trio.AudioSource` for asyncio; create it with :func:`open_audio_source`."""

    def __init__(self, source: _rtc.AudioSource, loop: _Loop) -> None:
        self._source = source
        self._loop = loop

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
        """Queue ``frame``; waits while the native queue is full (``queue_size_ms``)."""
        await _call(self._loop, self._source.capture_frame, frame)

    def clear_queue(self) -> None:
        """Discard the audio queued natively but not yet played out."""
        self._source.clear_queue()

    async def wait_for_playout(self) -> None:
        """Return once every captured frame has been played out of the queue."""
        await _call(self._loop, self._source.wait_for_playout)


class LocalAudioTrack(_rtc.LocalAudioTrack):
    """:class:`rtc_trio.LocalAudioTrack` that also takes an :class:`AudioSource` of this module."""

    @classmethod
    def create(cls, name: str, source: AudioSource | _rtc.AudioSource) -> LocalAudioTrack:
        """A track named ``name`` playing what ``source`` captures; use it as a ``with`` block."""
        inner = source._source if isinstance(source, AudioSource) else source
        return cast(LocalAudioTrack, super().create(name, inner))


class _Stream(Generic[F]):
    def __init__(self, stream: _rtc.AudioStream | _rtc.VideoStream, loop: _Loop) -> None:
        self._stream = stream
        self._loop = loop

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer fell behind."""
        return self._stream.dropped

    @property
    def capacity(self) -> int:
        return self._stream.capacity

    async def receive(self) -> F:
        """The next frame; ``trio.EndOfChannel`` once the stream ended."""
        return cast(F, await _call(self._loop, self._stream.receive))

    def __aiter__(self) -> _Stream[F]:
        return self

    async def __anext__(self) -> F:
        return cast(F, await _call(self._loop, self._stream.__anext__))


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
           wrap: Callable[[T, _Loop], W]) -> Callable[P, AbstractAsyncContextManager[W]]:
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

# The room layer goes here, in the same shape:
#     connect = _adapt(_rtc.connect, Room)
# where Room wraps rtc_trio's Room as AudioSource wraps its source (async methods through
# _call, sync ones passed through, room events iterated like _Stream). _Block already keeps
# the room's nursery in the one trio task that enters and exits it.
