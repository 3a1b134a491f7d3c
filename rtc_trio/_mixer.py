"""AudioMixer: sums any number of audio frame streams into one, scoped to ``async with``."""

from __future__ import annotations

import inspect
import math
from collections import deque
from contextlib import asynccontextmanager
from typing import AsyncIterable, AsyncIterator, NoReturn

import numpy as np
import numpy.typing as npt
import trio

from rtc_trio import _validate
from rtc_trio._audio_frame import AudioFrame, check_rate_and_channels

MAX_BLOCK_SECONDS = 10  # the longest output frame, as for received frames
MAX_CAPACITY = 100_000
MAX_TIMEOUT_MS = 3_600_000
_INT16_MIN, _INT16_MAX = np.int32(-32768), np.int32(32767)
HIGH_WATER, LOW_WATER = 4, 2  # blocks: an input's task stops reading at 4 buffered, resumes below 2


class _Input:
    """One input: its samples not yet mixed (at most ``HIGH_WATER`` blocks and a frame),
    and the cancel scope of the task that reads it."""

    def __init__(
        self, frames: AsyncIterable[AudioFrame], num_channels: int, blocksize: int, after: trio.Event | None
    ) -> None:
        self.frames = frames
        self.after = after  # the end of the previous reader of the same iterable, if one is ending
        self.finished = trio.Event()  # its task ended
        self.chunks: deque[npt.NDArray[np.int16]] = deque()
        self.buffered = 0  # samples per channel in chunks
        self.done = False  # the iterable ended
        self.stalled = False  # missed a block's deadline: not waited for until a block is buffered
        self.scope = trio.CancelScope()
        self.room = trio.Event()  # set when the mixer took it below LOW_WATER
        self._channels = num_channels
        self._low = LOW_WATER * blocksize

    def push(self, data: npt.NDArray[np.int16]) -> None:
        self.chunks.append(data.reshape(-1, self._channels))
        self.buffered += data.shape[0]

    def take(self, out: npt.NDArray[np.int32], count: int) -> None:
        """Add up to ``count`` samples per channel to ``out`` (the rest stays silent)."""
        at = 0
        chunks = self.chunks
        while at < count and chunks:
            chunk = chunks[0]
            n = count - at
            if n >= chunk.shape[0]:
                n = chunk.shape[0]
                out[at:at + n] += chunk
                chunks.popleft()
            else:
                out[at:at + n] += chunk[:n]
                chunks[0] = chunk[n:]
            at += n
        self.buffered -= at
        if self.buffered < self._low:
            self.room.set()


class AudioMixer(trio.abc.ReceiveChannel[AudioFrame]):
    """Sums its inputs into frames of ``blocksize`` samples; create it with :func:`open_audio_mixer`.

    ``async for frame in mixer`` yields the mix: int16, saturated at the int16 limits (no
    wrap-around), every frame ``blocksize`` samples per channel long. Inputs are any async
    iterables of :class:`AudioFrame` of the mixer's rate and channel count, of any frame
    size; each is read by a task of the mixer's block. A block waits at most
    ``stream_timeout_ms`` for an input that has not delivered its share: that input is
    then *stalled* and contributes what it has, padded with silence, to every block until
    it has a whole block buffered again. A block is made only when some input has samples
    for it: with every input stalled and empty, the mixer waits.

    A slow consumer pushes back: up to ``capacity`` mixed frames wait for it, then mixing
    pauses, then each input's task stops reading (each buffers at most four blocks and one
    frame), so nothing is dropped. An input that is itself a live stream then drops by
    its own rule (an :class:`AudioStream` drops its oldest frames).
    """

    def __init__(
        self, sample_rate: int, num_channels: int, blocksize: int, timeout: float, capacity: int
    ) -> None:
        self.sample_rate = sample_rate
        self.num_channels = num_channels
        self.blocksize = blocksize
        self.stream_timeout = timeout
        self._send, self._receive = trio.open_memory_channel[AudioFrame](capacity)
        self._inputs: dict[int, _Input] = {}  # by id() of the iterable
        self._leaving: dict[int, _Input] = {}  # removed, their tasks not ended yet
        self._changed = trio.Event()
        self._ending = False  # end_input() was called
        self._closed = False
        self._nursery: trio.Nursery | None = None

    def add_stream(self, frames: AsyncIterable[AudioFrame]) -> None:
        """Mix ``frames`` from now on, until it ends or :meth:`remove_stream` removes it."""
        if self._closed or self._ending or self._nursery is None:
            raise trio.ClosedResourceError("this mixer takes no more inputs")
        if not hasattr(frames, "__aiter__"):
            raise TypeError(f"add_stream takes an async iterable of AudioFrame, not {type(frames).__name__}")
        if id(frames) in self._inputs:
            raise ValueError("this iterable is already an input of the mixer")
        previous = self._leaving.get(id(frames))
        if inspect.isasyncgen(frames) and (previous is not None or frames.ag_frame is None):
            raise ValueError(
                "this async generator is closed, or being closed by the mixer that stopped "
                "reading it: pass a new one")
        after = None if previous is None else previous.finished
        source = _Input(frames, self.num_channels, self.blocksize, after)
        self._inputs[id(frames)] = source
        self._nursery.start_soon(self._read, source)
        self._changed.set()

    def remove_stream(self, frames: AsyncIterable[AudioFrame]) -> None:
        """Stop mixing ``frames`` now; what it had buffered is dropped. Nothing if it is no input.

        Its task is cancelled, and an async generator is closed: add another one to resume.
        Any other iterable can be added again; its new reader starts once the old one ended.
        """
        source = self._inputs.pop(id(frames), None)
        if source is not None:
            self._leaving[id(frames)] = source
            source.scope.cancel()
            self._changed.set()

    def end_input(self) -> None:
        """No more inputs will be added: iteration ends once the inputs have ended and been mixed."""
        self._ending = True
        self._changed.set()

    @property
    def queued(self) -> int:
        """Mixed frames waiting for the consumer (at most ``capacity``)."""
        return self._send.statistics().current_buffer_used

    async def receive(self) -> AudioFrame:
        """The next mixed frame; ``trio.EndOfChannel`` once :meth:`end_input` was called and
        every input ended."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("this mixer is closed")
        return await self._receive.receive()

    async def aclose(self) -> None:
        """Stop mixing and reading the inputs; :meth:`receive` raises ``ClosedResourceError``."""
        self._close()
        await trio.lowlevel.checkpoint()

    def _close(self) -> None:
        self._closed = True
        for source in self._inputs.values():
            source.scope.cancel()
        self._inputs.clear()
        self._receive.close()
        self._changed.set()

    async def _read(self, source: _Input) -> None:
        """One input's task: buffers its frames while the mixer has room for them."""
        try:
            with source.scope:
                if source.after is not None:
                    await source.after.wait()  # one reader at a time
                await self._read_frames(source)
            source.done = True
            self._changed.set()
        finally:
            source.finished.set()
            if self._leaving.get(id(source.frames)) is source:
                del self._leaving[id(source.frames)]

    async def _read_frames(self, source: _Input) -> None:
        limit = HIGH_WATER * self.blocksize
        iterator = aiter(source.frames)
        try:
            async for frame in iterator:
                self._check(frame, source)
                source.push(frame.data)
                self._changed.set()
                while source.buffered >= limit:
                    source.room = trio.Event()
                    await source.room.wait()
        finally:
            if inspect.isasyncgen(iterator):  # finalized here, in its own task
                await iterator.aclose()

    def _check(self, frame: object, source: _Input) -> None:
        if not isinstance(frame, AudioFrame):
            raise TypeError(f"a mixer input yielded {type(frame).__name__}, not an AudioFrame ({source.frames!r})")
        if frame.sample_rate != self.sample_rate or frame.num_channels != self.num_channels:
            raise ValueError(
                f"this mixer takes {self.sample_rate} Hz, {self.num_channels} channel(s); an input "
                f"({source.frames!r}) yielded {frame.sample_rate} Hz, {frame.num_channels} channel(s)"
            )

    async def _mix(self) -> None:
        """The mixing task: one block at a time, into the bounded output channel."""
        async with self._send:
            while True:
                await self._wait_for_block()
                if not self._inputs:  # ending, and every input ended and was mixed
                    return
                try:
                    await self._send.send(self._block())
                except trio.BrokenResourceError:  # the mixer was closed
                    return

    async def _wait_for_block(self) -> None:
        """Until every input waited for has a block (or ended) and one has samples, or
        until the inputs all ended after :meth:`end_input`. An input still short of a block
        when ``stream_timeout`` has passed is marked stalled."""
        deadline = trio.current_time() + self.stream_timeout
        while True:
            self._drop_ended()
            late = [s for s in self._inputs.values() if not self._ready(s)]
            if not self._inputs:
                if self._ending:
                    return
            elif not late and any(s.buffered for s in self._inputs.values()):
                return
            if late and trio.current_time() >= deadline:
                for s in late:
                    s.stalled = True
                continue
            changed = self._changed = trio.Event()
            with trio.move_on_at(deadline if late else math.inf):
                await changed.wait()

    def _ready(self, source: _Input) -> bool:
        if source.buffered >= self.blocksize:
            source.stalled = False
        return source.done or source.stalled or source.buffered >= self.blocksize

    def _block(self) -> AudioFrame:
        total = np.zeros((self.blocksize, self.num_channels), np.int32)
        for source in self._inputs.values():
            source.take(total, self.blocksize)
        frame = AudioFrame.__new__(AudioFrame)  # valid by construction: no checks needed
        frame.data = np.clip(total, _INT16_MIN, _INT16_MAX, out=total).astype(np.int16)
        frame.sample_rate = self.sample_rate
        return frame

    def _drop_ended(self) -> None:
        for key, source in list(self._inputs.items()):
            if source.done and not source.buffered:
                del self._inputs[key]


@asynccontextmanager
async def open_audio_mixer(
    sample_rate: int, num_channels: int, *, blocksize: int | None = None,
    stream_timeout_ms: float = 100, capacity: int = 100,
) -> AsyncIterator[AudioMixer]:
    """An :class:`AudioMixer` whose input tasks all end with the block.

    ``blocksize``: samples per channel of each output frame (default 10 ms,
    ``sample_rate // 100``). ``stream_timeout_ms``: how long a block waits for an input
    that has not delivered its share. ``capacity``: mixed frames that
    wait for the consumer before mixing pauses. An exception of an input (an input that
    raised, or yielded a frame of another rate or channel count) ends the block with it,
    as for any task of a nursery.
    """
    rate, channels = check_rate_and_channels(sample_rate, num_channels)
    block = _validate.integer(
        "blocksize", rate // 100 if blocksize is None else blocksize, 1, rate * MAX_BLOCK_SECONDS)
    timeout = _validate.number("stream_timeout_ms", stream_timeout_ms, unit=" ms")
    if timeout > MAX_TIMEOUT_MS:
        raise ValueError(f"stream_timeout_ms must be at most {MAX_TIMEOUT_MS}, got {stream_timeout_ms}")
    size = _validate.integer("capacity", capacity, 1, MAX_CAPACITY)
    mixer = AudioMixer(rate, channels, block, timeout / 1000, size)
    raised: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            mixer._nursery = nursery
            nursery.start_soon(mixer._mix)
            try:
                yield mixer
            except BaseException as error:
                raised.append(error)
                raise
            finally:
                mixer._close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if raised and len(group.exceptions) == 1 and (
            group.exceptions[0] is raised[0] or isinstance(raised[0], BaseExceptionGroup)
        ):
            _reraise(raised[0])  # the body's own exception, as it raised it
        raise
    finally:
        mixer._nursery = None


def _reraise(error: BaseException) -> NoReturn:
    """Raise ``error`` keeping its own context (not the group that held it)."""
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context
        del error, context
