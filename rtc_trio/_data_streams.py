"""Data streams: text and byte streams sent by the local participant and received by topic.

Sending (on :class:`~rtc_trio.LocalParticipant`): ``send_text``, ``send_bytes`` and
``send_file`` send a whole stream in one call; ``stream_text`` and ``stream_bytes`` open a
writer for the length of an ``async with`` block. The native library chunks every payload
(15 kB per packet). Each native write runs as a task of its own, so a writer keeps one write
in flight: chunks arrive in the order they were written.

Receiving (on :class:`~rtc_trio.Room`): ``text_streams(topic)`` and ``byte_streams(topic)``
route every stream that opens on ``topic`` to the one block listening to it, as a reader. A
stream on a topic nobody listens to is dropped at once, natively, with whatever it buffered.

Bounds, since the native side pushes chunks as fast as the network brings them (it has no
back-pressure): a listener holds at most ``capacity`` readers not yet taken (beyond that the
oldest waiting reader is closed and counted in ``dropped``), and a reader buffers at most
``buffer_bytes`` of chunks not yet read. A reader that falls further behind stops buffering:
its later chunks are dropped and, after the chunks it kept, it raises :class:`StreamError`.
"""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import stat
import threading
import weakref
from collections import deque
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import (
    Any, AsyncIterator, Callable, Generic, Mapping, Protocol, TypeVar, final,
)

import trio

from rtc_trio import _handles, _native, _router, _validate
from rtc_trio._errors import RtcError, StreamError
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2

DEFAULT_CAPACITY = 16
"""Readers a listener holds for its block before it drops the oldest."""
MAX_CAPACITY = 1024
DEFAULT_BUFFER_BYTES = 8 * 1024 * 1024
"""Bytes of unread chunks a reader buffers before it gives its stream up."""
MIN_BUFFER_BYTES = 1024
MAX_BUFFER_BYTES = 1 << 30
READER_MAX_CHUNKS = 65536
"""Unread chunks a reader buffers, whatever their size (a second bound, for tiny chunks)."""
DEFAULT_MIME_TYPE = "application/octet-stream"
MAX_HEADER_BYTES = 15000
"""A stream's header travels in one packet of at most this many bytes (livekit_ffi refuses a
larger one: "stream header exceeds maximum size"). Its topic, attributes, destination
identities, name and MIME type must fit, with ``_HEADER_FIXED`` bytes for its other fields."""
_HEADER_FIXED = 128  # measured: 64 for a text stream (a 14,933-byte topic is the largest sent)

C = TypeVar("C", str, bytes)


# -- what a stream is ----------------------------------------------------------------------

@dataclass(frozen=True)
class TextStreamInfo:
    """A text stream's header: its id, topic, sender, attributes and size (UTF-8 bytes, when
    the sender said it up front)."""

    id: str
    topic: str
    sender_identity: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    total_size: int | None = None
    mime_type: str = "text/plain"
    timestamp: int = 0
    """When the sender opened it, in milliseconds since the epoch."""


@dataclass(frozen=True)
class ByteStreamInfo:
    """A byte stream's header: like :class:`TextStreamInfo`, with a ``name`` (a file's name)."""

    id: str
    topic: str
    sender_identity: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    total_size: int | None = None
    mime_type: str = DEFAULT_MIME_TYPE
    timestamp: int = 0
    name: str = ""


def _text_info(info: Any, sender_identity: str) -> TextStreamInfo:
    return TextStreamInfo(
        id=info.stream_id, topic=info.topic, sender_identity=sender_identity,
        attributes=dict(info.attributes),
        total_size=info.total_length if info.HasField("total_length") else None,
        mime_type=info.mime_type, timestamp=info.timestamp)


def _byte_info(info: Any, sender_identity: str) -> ByteStreamInfo:
    return ByteStreamInfo(
        id=info.stream_id, topic=info.topic, sender_identity=sender_identity,
        attributes=dict(info.attributes),
        total_size=info.total_length if info.HasField("total_length") else None,
        mime_type=info.mime_type, timestamp=info.timestamp, name=info.name)


# -- the native side: livekit_ffi's threads -------------------------------------------------

class _Inflow:
    """What one reader's chunks may still take (native threads and trio, under ``_lock``)."""

    __slots__ = ("limit", "buffered", "overflowed")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buffered = 0
        self.overflowed = False


_lock = threading.Lock()
_inflows: dict[int, _Inflow] = {}  # reader handle -> its budget, while the reader is open
_OVERFLOW = object()  # the item that tells a reader its later chunks were dropped


@dataclass(frozen=True)
class _Failed:
    """The item that ends a reader whose room ended before its stream did."""

    reason: str


_orphans: deque[tuple[int, _router.Subscription[Any]]] = deque()
"""Routes of readers collected while still open, released by trio (see ``_release_orphans``)."""


@_native.on_event("text_stream_reader_event")
@_native.on_event("byte_stream_reader_event")
def _on_reader_event(event: Any) -> None:
    """Route a chunk or the end to its reader, within the reader's budget."""
    key = event.reader_handle
    item: object
    if event.WhichOneof("detail") == "chunk_received":
        size = event.ByteSize()
        with _lock:
            inflow = _inflows.get(key)
            if inflow is None or inflow.overflowed:
                return  # its reader is closed, or gave the stream up
            if inflow.buffered and inflow.buffered + size > inflow.limit:
                inflow.overflowed = True
                item = _OVERFLOW
            else:
                inflow.buffered += size
                item = (event.chunk_received.content, size)
    else:
        with _lock:
            inflow = _inflows.pop(key, None)
        if inflow is None or inflow.overflowed:
            return
        item = event.eos
    _router.deliver(key, item)


@_native.on_event("text_stream_open")
@_native.on_event("byte_stream_open")
def _on_writer_opened(callback: Any) -> None:
    """The reply to a writer's open: its handle is ours, released if the caller left."""
    handle = 0
    if callback.HasField("writer"):
        handle = _handles.acquire(callback.writer.handle.id)
    _router.deliver(callback.async_id, callback, handle)


# -- sending ----------------------------------------------------------------------------------

class _Link(Protocol):
    """What the sending side needs of a room (its :class:`~rtc_trio._participant.RoomLink`)."""

    @property
    def closed(self) -> bool: ...

    @property
    def remote_participants(self) -> Mapping[str, object]: ...

    @property
    def nursery(self) -> trio.Nursery | None: ...


@dataclass(frozen=True)
class Sender:
    """The local participant, as the sending functions here need it."""

    handle: int
    identity: str
    link: _Link


def _route(sender: Sender, options: Any, topic: object, destination_identities: object,
           attributes: object) -> None:
    """Check and fill the options every stream has; refuse a closed room or unknown identities."""
    options.topic = _validate.string("topic", topic)
    destinations: list[str] = []
    if destination_identities is not None:
        destinations = _validate.strings("destination_identities", destination_identities)
    attrs = {} if attributes is None else _validate.string_mapping("attributes", attributes)
    options.destination_identities.extend(destinations)
    options.attributes.update(attrs)
    _check_header(options)
    if sender.link.closed:
        raise trio.ClosedResourceError("the room is closed")
    unknown = [i for i in destinations if i not in sender.link.remote_participants]
    if unknown:
        raise ValueError(f"no participant with identity {', '.join(map(repr, unknown))} in the room")


def _check_header(options: Any) -> None:
    size = _HEADER_FIXED + options.ByteSize()
    if size > MAX_HEADER_BYTES:
        raise ValueError(f"the stream's topic, attributes, destination identities, name and MIME "
                         f"type take {size - _HEADER_FIXED} bytes; its header has room for "
                         f"{MAX_HEADER_BYTES - _HEADER_FIXED}")


def _byte_options(options: Any, name: object, mime_type: object) -> None:
    options.name = _validate.string("name", name)
    options.mime_type = _validate.string("mime_type", mime_type)


def _payload(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, bytearray or memoryview, not {type(data).__name__}")
    return bytes(data)


def _text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    return text


async def _settle(req: ffi_pb2.FfiRequest, name: str) -> Any:
    """Send ``req`` (unless cancelled already) and wait for its reply; its error becomes a
    :class:`StreamError`."""
    await trio.lowlevel.checkpoint_if_cancelled()
    callback = await _native.request_async(req, name)
    if callback.HasField("error"):
        raise StreamError(f"{name} failed: {callback.error.description}")
    return callback


async def send_text(sender: Sender, text: object, *, topic: object, destination_identities: object,
                    attributes: object) -> TextStreamInfo:
    req = ffi_pb2.FfiRequest()
    req.send_text.text = _text(text)
    _route(sender, req.send_text.options, topic, destination_identities, attributes)
    req.send_text.local_participant_handle = sender.handle
    callback = await _settle(req, "send_text")
    return _text_info(callback.info, sender.identity)


async def send_bytes(sender: Sender, data: object, *, topic: object, name: object, mime_type: object,
                     destination_identities: object, attributes: object) -> ByteStreamInfo:
    req = ffi_pb2.FfiRequest()
    payload = _payload(data)
    _byte_options(req.send_bytes.options, name, mime_type)
    _route(sender, req.send_bytes.options, topic, destination_identities, attributes)
    req.send_bytes.bytes = payload
    req.send_bytes.local_participant_handle = sender.handle
    callback = await _settle(req, "send_bytes")
    return _byte_info(callback.info, sender.identity)


def _inspect_file(path: str) -> tuple[str, str]:
    """A worker thread: ``path`` made absolute once known to be a readable regular file, and
    its guessed MIME type. Raises the ``OSError`` that opening it raises, ``IsADirectoryError``
    for a directory, ``ValueError`` for anything else that is not a regular file (a FIFO, a
    device: opened without blocking, never read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path!r} is not a regular file")
    guessed, _ = mimetypes.guess_type(path)
    return os.path.abspath(path), guessed or DEFAULT_MIME_TYPE


async def send_file(sender: Sender, path: object, *, topic: object, name: object, mime_type: object,
                    destination_identities: object, attributes: object) -> ByteStreamInfo:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or an os.PathLike, not {type(path).__name__}")
    file_path = os.fspath(path)
    if not isinstance(file_path, str):
        raise TypeError("path must be a text path, not bytes")
    req = ffi_pb2.FfiRequest()
    options = req.send_file.options
    _byte_options(options, os.path.basename(file_path) if name is None else name,
                  "" if mime_type is None else mime_type)
    _route(sender, options, topic, destination_identities, attributes)
    # opening the file, and the first use of mimetypes, touch the disk: not on trio's thread
    req.send_file.file_path, guessed = await trio.to_thread.run_sync(
        _inspect_file, file_path, abandon_on_cancel=True)
    if mime_type is None:
        options.mime_type = guessed
        _check_header(options)
    if sender.link.closed:
        raise trio.ClosedResourceError("the room is closed")
    req.send_file.local_participant_handle = sender.handle
    callback = await _settle(req, "send_file")  # the native side reads the file on its threads
    return _byte_info(callback.info, sender.identity)


class _Writer(Generic[C]):
    """One open outgoing stream; valid inside its ``async with`` block."""

    _kind: str

    def __init__(self, owned: Any, sender: Sender) -> None:
        self._handle = NativeHandle(owned.handle.id)
        self._link = sender.link
        self._writing = False
        self._broken = False  # a write was cancelled or failed: the stream cannot end well
        self._closed = False
        self._written = 0  # characters or bytes sent
        self._total: int | None = None  # bytes announced

    async def write(self, chunk: C) -> None:
        """Send ``chunk``; returns once the native side has taken it.

        Cancelled while waiting, the chunk may or may not go out: the stream is then broken,
        later writes raise ``trio.BrokenResourceError`` and the stream ends with an error.
        """
        payload = self._chunk(chunk)
        self._check_size(len(payload))
        if self._closed:
            raise trio.ClosedResourceError("this stream writer is closed")
        if self._writing:
            raise trio.BusyResourceError("another task is writing to this stream")
        if self._broken:
            raise trio.BrokenResourceError("an earlier write was cancelled or failed")
        if self._link.closed:
            raise trio.ClosedResourceError("the room is closed")
        await trio.lowlevel.checkpoint_if_cancelled()  # cancelled, it has not gone out
        if not payload:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        req = ffi_pb2.FfiRequest()
        self._fill_write(req, payload)
        self._written += len(payload)
        self._writing = True
        self._broken = True  # until the native side took it
        try:
            await _settle(req, f"{self._kind}_stream_write")
            self._broken = False
        finally:
            self._writing = False

    def _chunk(self, chunk: object) -> C:
        raise NotImplementedError

    def _check_size(self, size: int) -> None:
        """Refuse a write past the size the stream announced (ValueError: nothing is sent)."""
        if self._total is not None and self._written + size > self._total:
            raise ValueError(f"this stream announced {self._total} bytes: {self._written} were "
                             f"written, {size} more would exceed it")

    def _fill_write(self, req: ffi_pb2.FfiRequest, payload: C) -> None:
        raise NotImplementedError

    def _send_close(self, reason: str | None) -> _router.Subscription[Any] | None:
        """Close the stream natively, with ``reason`` if given (its receivers then see a
        StreamError); the route of the reply, or None if the room is gone (then the handle is
        just released: nobody is left to tell)."""
        self._closed = True
        if self._link.closed:
            self._handle.release()
            return None
        name = f"{self._kind}_stream_close"
        req = ffi_pb2.FfiRequest()
        close = getattr(req, name)
        close.writer_handle = self._handle.id
        if reason is not None:
            close.reason = reason
        try:
            reply = _native.send_expecting_reply(req, name)
        except BaseException:
            self._handle.release()
            raise
        _handles.forget(self._handle.id)  # the request took the handle over
        return reply

    async def _finish(self) -> None:
        """The block ended normally: close the stream and wait until it is closed."""
        if self._broken:
            self._abort("a write was cancelled or failed")
            raise StreamError("the stream ended with an error: a write was cancelled or failed")
        if self._total is not None and self._written != self._total:
            why = f"the sender wrote {self._written} of the {self._total} bytes it announced"
            self._abort(why)
            raise StreamError(f"the stream ended with an error: {why}")
        reply = self._send_close(None)
        if reply is None:
            raise trio.ClosedResourceError("the room closed before the stream ended")
        try:
            callback = await reply.receive()
        finally:
            reply.close()
        if callback.HasField("error"):
            raise StreamError(f"{self._kind}_stream_close failed: {callback.error.description}")

    def _abort(self, reason: str) -> None:
        """Close the stream with ``reason``, which its receivers see as a StreamError; nothing
        waits for the reply (its route is closed: it is dropped when it comes)."""
        if not self._closed:
            reply = self._send_close(reason)
            if reply is not None:
                reply.close()


@final
class TextStreamWriter(_Writer[str]):
    """The writer ``stream_text`` yields: ``await writer.write(text)``; ``info`` is its header."""

    _kind = "text"

    def __init__(self, owned: Any, sender: Sender) -> None:
        super().__init__(owned, sender)
        self.info = _text_info(owned.info, sender.identity)

    def _chunk(self, chunk: object) -> str:
        return _text(chunk)

    def _fill_write(self, req: ffi_pb2.FfiRequest, payload: str) -> None:
        req.text_stream_write.writer_handle = self._handle.id
        req.text_stream_write.text = payload


@final
class ByteStreamWriter(_Writer[bytes]):
    """The writer ``stream_bytes`` yields: ``await writer.write(data)``; ``info`` is its header."""

    _kind = "byte"

    def __init__(self, owned: Any, sender: Sender) -> None:
        super().__init__(owned, sender)
        self.info = _byte_info(owned.info, sender.identity)
        self._total = self.info.total_size

    def _chunk(self, chunk: object) -> bytes:
        return _payload(chunk)

    def _fill_write(self, req: ffi_pb2.FfiRequest, payload: bytes) -> None:
        req.byte_stream_write.writer_handle = self._handle.id
        req.byte_stream_write.bytes = payload


def _abort_reason(error: BaseException) -> str:
    if isinstance(error, trio.Cancelled):
        return "the sender cancelled the stream"
    return f"the sender's block raised {type(error).__name__}"


W = TypeVar("W", TextStreamWriter, ByteStreamWriter)


ABANDONED_OPEN_WAIT = 30.0
"""Seconds the room waits for the reply to a writer's open whose caller was cancelled, to
close that stream with an error: its receivers then see a StreamError, not a success."""


async def _open(sender: Sender, req: ffi_pb2.FfiRequest, name: str,
                make: Callable[[Any, Sender], W]) -> W:
    """Open a writer. Cancelled once the request went out, the stream opens anyway: a task of
    the room's nursery takes the reply over and closes the stream with an error reason."""
    await trio.lowlevel.checkpoint_if_cancelled()
    reply = _native.send_expecting_reply(req, name)
    try:
        callback = await reply.receive()
    except BaseException:
        nursery = sender.link.nursery
        if nursery is None or sender.link.closed:
            reply.close()  # the room is going: a late writer handle is just released
        else:
            nursery.start_soon(_abort_late, sender, reply, make)
        raise
    reply.close()
    if callback.HasField("error"):
        raise StreamError(f"{name} failed: {callback.error.description}")
    return make(callback.writer, sender)  # no checkpoint since the handle became ours


async def _abort_late(sender: Sender, reply: _router.Subscription[Any],
                      make: Callable[[Any, Sender], W]) -> None:
    """The room's nursery: the open's caller left; close the stream it opened with an error."""
    try:
        with trio.move_on_after(ABANDONED_OPEN_WAIT):
            callback = await reply.receive()
            if callback.HasField("writer"):
                make(callback.writer, sender)._abort("the sender cancelled the stream")
    finally:
        reply.close()


@asynccontextmanager
async def _writing(sender: Sender, req: ffi_pb2.FfiRequest, name: str,
                   make: Callable[[Any, Sender], W]) -> AsyncIterator[W]:
    if sender.link.closed:
        raise trio.ClosedResourceError("the room is closed")
    writer = await _open(sender, req, name, make)
    try:
        yield writer
        await writer._finish()
    except BaseException as error:
        writer._abort(_abort_reason(error))  # unless closed already
        raise


def stream_text(sender: Sender, *, topic: object, destination_identities: object,
                attributes: object) -> AbstractAsyncContextManager[TextStreamWriter]:
    req = ffi_pb2.FfiRequest()
    _route(sender, req.text_stream_open.options, topic, destination_identities, attributes)
    req.text_stream_open.local_participant_handle = sender.handle
    return _writing(sender, req, "text_stream_open", TextStreamWriter)


def stream_bytes(sender: Sender, *, topic: object, name: object, mime_type: object,
                 total_size: object, destination_identities: object,
                 attributes: object) -> AbstractAsyncContextManager[ByteStreamWriter]:
    req = ffi_pb2.FfiRequest()
    options = req.byte_stream_open.options
    _byte_options(options, name, mime_type)
    if total_size is not None:
        options.total_length = _validate.integer("total_size", total_size, 0, (1 << 63) - 1)
    _route(sender, options, topic, destination_identities, attributes)
    req.byte_stream_open.local_participant_handle = sender.handle
    return _writing(sender, req, "byte_stream_open", ByteStreamWriter)


# -- receiving ----------------------------------------------------------------------------------

class _Reader(trio.abc.ReceiveChannel[C]):
    """One incoming stream: a ``trio.abc.ReceiveChannel`` of its chunks.

    It ends with ``trio.EndOfChannel`` (``async for`` just stops) when the stream ended well,
    and raises :class:`StreamError` when it did not: the sender aborted it or left, the room
    disconnected, or this reader fell more than its ``buffer_bytes`` behind.
    """

    _kind: str

    def __init__(self, key: int, buffer_bytes: int) -> None:
        self._key = key
        self._inflow = _Inflow(buffer_bytes)
        self._sub: _router.Subscription[Any] = _router.Subscription(READER_MAX_CHUNKS)
        self._done = False
        self._error: str | None = None  # why it ended badly, once done
        self._closed = False
        self._on_stop: Callable[[Any], None] | None = None
        self._partial: list[C] = []  # what a cancelled read_all read
        # dropped unread, its route and buffered chunks go at the next trio-side use of streams
        # (a finalizer may run on any thread, inside any lock: it only queues)
        self._finalizer: weakref.finalize[[int, _router.Subscription[Any]], _Reader[C]] = \
            weakref.finalize(self, _orphan, key, self._sub)
        self._finalizer.atexit = False

    def _start(self) -> None:
        """Route the stream's chunks here and start them flowing; the request that does it
        takes the native reader handle over (released here if it fails)."""
        with _lock:
            _inflows[self._key] = self._inflow
        _router.subscribe(self._key, self._sub)
        req = ffi_pb2.FfiRequest()
        getattr(req, f"{self._kind}_read_incremental").reader_handle = self._key
        try:
            _native.request(req)
        except RtcError:
            self._stop()
            _handles.release(self._key)
            raise
        _handles.forget(self._key)

    async def receive(self) -> C:
        """The next chunk, as it came; ``trio.EndOfChannel`` once the stream ended well."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._raise_if_over()
            try:
                item = await self._sub.receive()
            except trio.ClosedResourceError:
                self._raise_if_over()  # it ended, or was closed, while we waited
                raise
            chunk = self._take(item)
            if chunk:
                return chunk

    async def read_all(self) -> C:
        """The rest of the stream, joined, once it ended well (raises like :meth:`receive`).

        Cancelled mid-way, it keeps what it read: the next ``read_all`` returns it too, so a
        retried call gets everything from where the first one started.
        """
        async for chunk in self:
            self._partial.append(chunk)
        parts, self._partial = self._partial, []
        return self._join(parts)

    def _join(self, parts: list[C]) -> C:
        raise NotImplementedError

    def _take(self, item: Any) -> C | None:
        """The chunk ``item`` carries; None (and the reader done) if it ends the stream."""
        if item is _OVERFLOW or self._sub.dropped:
            self._end_with(f"this reader fell behind: more than {self._inflow.limit} bytes "
                           "were waiting to be read, the stream's later chunks were dropped")
            return None
        if isinstance(item, _Failed):
            self._end_with(item.reason)
            return None
        if isinstance(item, tuple):
            content, size = item
            with _lock:
                self._inflow.buffered -= size
            return content  # type: ignore[no-any-return]
        if item.attributes:  # the trailer's attributes complete the header's
            self.info = replace(self.info, attributes={**self.info.attributes, **item.attributes})
        self._end_with(item.error.description if item.HasField("error") else None)
        return None

    info: Any

    def _raise_if_over(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this stream reader is closed")
        if self._done:
            if self._error is not None:
                raise StreamError(self._error)
            raise trio.EndOfChannel

    def _stop(self) -> None:
        """Nothing more comes: leave the route (and the listener, which holds it until then)."""
        self._finalizer.detach()
        with _lock:
            _inflows.pop(self._key, None)
        self._sub.close()
        if self._on_stop is not None:
            self._on_stop(self)

    def _end_with(self, error: str | None) -> None:
        if not self._done:
            self._done, self._error = True, error
        self._stop()

    def _fail(self, error: str) -> None:
        """The room ended: unless the stream's end came already (then it ends as that says),
        later chunks are dropped and, after those buffered, reads raise ``error``."""
        if self._done or self._closed:
            return
        with _lock:
            if _inflows.pop(self._key, None) is None:
                return  # its end is buffered
        _router.deliver(self._key, _Failed(error))

    def close(self) -> None:
        """Stop receiving: what is buffered is dropped, later reads raise
        ``trio.ClosedResourceError``. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._stop()

    async def aclose(self) -> None:
        """:meth:`close`, as a trio async resource."""
        self.close()
        await trio.lowlevel.checkpoint()


@final
class TextStreamReader(_Reader[str]):
    """An incoming text stream: ``async for chunk in reader`` or ``await reader.read_all()``;
    ``info`` is its :class:`TextStreamInfo`."""

    _kind = "text"
    info: TextStreamInfo

    def __init__(self, opened: Any, buffer_bytes: int) -> None:
        super().__init__(opened.reader.handle.id, buffer_bytes)
        self.info = _text_info(opened.reader.info, opened.participant_identity)
        self._start()

    def _join(self, parts: list[str]) -> str:
        return "".join(parts)


@final
class ByteStreamReader(_Reader[bytes]):
    """An incoming byte stream: ``async for chunk in reader`` or ``await reader.read_all()``;
    ``info`` is its :class:`ByteStreamInfo`."""

    _kind = "byte"
    info: ByteStreamInfo

    def __init__(self, opened: Any, buffer_bytes: int) -> None:
        super().__init__(opened.reader.handle.id, buffer_bytes)
        self.info = _byte_info(opened.reader.info, opened.participant_identity)
        self._start()

    def _join(self, parts: list[bytes]) -> bytes:
        return b"".join(parts)


R = TypeVar("R", TextStreamReader, ByteStreamReader)


def _orphan(key: int, sub: _router.Subscription[Any]) -> None:
    _orphans.append((key, sub))


def _release_orphans() -> None:
    """trio: release the routes (and buffered chunks) of readers dropped while still open."""
    while _orphans:
        key, sub = _orphans.popleft()
        with _lock:
            _inflows.pop(key, None)
        sub.close()


@dataclass(frozen=True)
class IncomingStreamsStatistics:
    """An :class:`IncomingStreams` channel at one moment."""

    waiting: int
    """Readers not taken yet."""
    capacity: int
    """Most readers it holds before it drops the oldest."""
    dropped: int
    """Readers dropped so far, unread, because the block did not take them in time."""


@final
class IncomingStreams(trio.abc.ReceiveChannel[R]):
    """The streams that open on one topic, one reader each, as ``room.text_streams(topic)``
    (or ``byte_streams``) yields them: a ``trio.abc.ReceiveChannel`` of readers.

    It holds at most ``capacity`` readers not taken yet; beyond that the oldest waiting one is
    closed and counted in ``dropped``. It ends (``trio.EndOfChannel``) when the room
    disconnects; streams still running then raise :class:`StreamError`. Leaving the block
    closes it and the readers still open. A reader dropped unread (no longer referenced) is
    released with its buffered chunks at the next use of any listener.
    """

    def __init__(self, topic: str, capacity: int, buffer_bytes: int,
                 make: Callable[[Any, int], R]) -> None:
        self.topic = topic
        self.capacity = capacity
        self.buffer_bytes = buffer_bytes
        self.dropped = 0
        self._make: Callable[[Any, int], R] = make
        self._waiting: deque[R] = deque()
        self._given: weakref.WeakSet[R] = weakref.WeakSet()  # readers made here, still open
        self._ended = False
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()

    def _opened(self, opened: Any) -> None:
        """The room's task: a stream opened on this topic."""
        _release_orphans()
        if self._closed or self._ended:
            _handles.release(opened.reader.handle.id)
            return
        reader = self._make(opened, self.buffer_bytes)
        reader._on_stop = self._given.discard
        self._given.add(reader)
        if len(self._waiting) >= self.capacity:
            self._waiting.popleft().close()
            self.dropped += 1
        self._waiting.append(reader)
        self._lot.unpark_all()

    def _end(self, error: str) -> None:
        """The room ended: no stream opens any more, those running fail with ``error``."""
        self._ended = True
        for reader in list(self._given):
            reader._fail(error)
        self._lot.unpark_all()

    def statistics(self) -> IncomingStreamsStatistics:
        """How many readers wait to be taken, the capacity, and how many were dropped."""
        return IncomingStreamsStatistics(len(self._waiting), self.capacity, self.dropped)

    def receive_nowait(self) -> R:
        """The oldest waiting reader; ``trio.WouldBlock`` if none yet."""
        _release_orphans()
        if self._closed:
            raise trio.ClosedResourceError("this channel of streams is closed")
        if self._waiting:
            return self._waiting.popleft()
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> R:
        """The reader of the next stream; ``trio.EndOfChannel`` once the room disconnected."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                reader = self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()
                continue
            await trio.lowlevel.cancel_shielded_checkpoint()
            return reader

    def close(self) -> None:
        """Stop listening: every reader given out or waiting is closed."""
        _release_orphans()
        self._closed = True
        for reader in list(self._given):
            reader.close()
        self._waiting.clear()
        self._lot.unpark_all()

    async def aclose(self) -> None:
        """:meth:`close`, as a trio async resource."""
        self.close()
        await trio.lowlevel.checkpoint()


class StreamListeners:
    """A room's listening blocks by kind and topic. The room's task hands each stream that
    opens to the block listening to its topic, or releases it natively."""

    def __init__(self, link: _Link) -> None:
        self._link = link
        self._by_topic: dict[tuple[str, str], IncomingStreams[Any]] = {}
        self._ended: str | None = None  # why, once the room ended

    @asynccontextmanager
    async def listen(self, kind: str, topic: object, capacity: object, buffer_bytes: object,
                     make: Callable[[Any, int], R]) -> AsyncIterator[IncomingStreams[R]]:
        """The block that receives the ``kind`` streams opening on ``topic``."""
        topic = _validate.string("topic", topic)
        capacity = _validate.integer("capacity", capacity, 1, MAX_CAPACITY)
        buffer_bytes = _validate.integer("buffer_bytes", buffer_bytes, MIN_BUFFER_BYTES,
                                         MAX_BUFFER_BYTES)
        if self._link.closed:
            raise trio.ClosedResourceError("the room is closed")
        key = (kind, topic)
        if key in self._by_topic:
            raise trio.BusyResourceError(f"another block listens to {kind} streams on topic {topic!r}")
        channel = IncomingStreams(topic, capacity, buffer_bytes, make)
        if self._ended is not None:
            channel._end(self._ended)
        self._by_topic[key] = channel
        try:
            await trio.lowlevel.checkpoint()
            yield channel
        finally:
            if self._by_topic.get(key) is channel:
                del self._by_topic[key]
            channel.close()

    def opened(self, kind: str, opened: Any) -> None:
        """The room's task: a ``kind`` stream opened (its reader handle is ours)."""
        listener = self._by_topic.get((kind, opened.reader.info.topic))
        if listener is None:
            _handles.release(opened.reader.handle.id)  # nobody listens: drop it natively
            return
        try:
            listener._opened(opened)
        except RtcError as error:  # the native side refused to read it (handle released)
            logging.getLogger("rtc_trio").warning("rtc_trio could not read a %s stream: %s", kind, error)

    def room_ended(self, why: str) -> None:
        """No stream opens any more; those running fail with ``why``."""
        if self._ended is None:
            self._ended = why
        for listener in self._by_topic.values():
            listener._end(self._ended)
