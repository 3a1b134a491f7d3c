"""The process-wide connection to livekit_ffi: loading, requests, and the event callback."""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
from typing import Any, Callable

from rtc_trio import _handles, _router
from rtc_trio._errors import RtcError
from rtc_trio._ffi import ffi, lib
from rtc_trio._proto import audio_frame_pb2, ffi_pb2, livekit_rtc_dir

logger = logging.getLogger("rtc_trio")

SDK_VERSION = "0.1.0"
# Client-chosen async ids live far above the ids the native side hands out (a counter from 1).
_async_ids = itertools.count(1 << 62)

_init_lock = threading.Lock()
_ready = False
_unusable: RtcError | None = None  # set on a native panic, after dispose, in a forked child
_event_handlers: dict[str, Callable[[Any], None]] = {}
_forked = False


def library_path() -> str:
    """``LIVEKIT_LIB_PATH`` if set, else the library shipped in the installed ``livekit`` wheel."""
    override = os.environ.get("LIVEKIT_LIB_PATH", "").strip()
    if override:
        return override
    return str(livekit_rtc_dir() / "resources" / "liblivekit_ffi.so")


def _initialize() -> None:
    global _ready
    with _init_lock:
        if _ready:
            return
        path = library_path()
        failure = lib.rtc_load(path.encode())
        if failure != ffi.NULL:
            raise RtcError(f"cannot load livekit_ffi from {path}: {ffi.string(failure).decode()}")
        lib.rtc_fast_fields(*_fast_path_fields())
        lib.rtc_initialize(True, b"python", SDK_VERSION.encode())
        atexit.register(_dispose)
        _ready = True


# The wire layout the C fast paths read and write (ffi/rtc_trio_ffi.c): message, field, number.
_FAST_PATH_LAYOUT: list[tuple[Any, str, int]] = [
    (audio_frame_pb2.CaptureAudioFrameRequest, "source_handle", 1),
    (audio_frame_pb2.CaptureAudioFrameRequest, "buffer", 2),
    (audio_frame_pb2.CaptureAudioFrameRequest, "request_async_id", 3),
    (audio_frame_pb2.CaptureAudioFrameCallback, "async_id", 1),
    (audio_frame_pb2.CaptureAudioFrameCallback, "error", 2),
    (audio_frame_pb2.AudioStreamEvent, "stream_handle", 1),
    (audio_frame_pb2.AudioStreamEvent, "frame_received", 2),
    (audio_frame_pb2.AudioFrameReceived, "frame", 1),
    (audio_frame_pb2.OwnedAudioFrameBuffer, "handle", 1),
    (audio_frame_pb2.OwnedAudioFrameBuffer, "info", 2),
    (audio_frame_pb2.AudioFrameBufferInfo, "data_ptr", 1),
    (audio_frame_pb2.AudioFrameBufferInfo, "num_channels", 2),
    (audio_frame_pb2.AudioFrameBufferInfo, "sample_rate", 3),
    (audio_frame_pb2.AudioFrameBufferInfo, "samples_per_channel", 4),
]


def _fast_path_fields() -> tuple[int, int, int]:
    """Field numbers for the C fast paths, checked against the installed protocol."""
    for message, field, number in _FAST_PATH_LAYOUT:
        if message.DESCRIPTOR.fields_by_name[field].number != number:
            raise RtcError(
                f"the installed livekit protocol changed ({message.DESCRIPTOR.name}.{field} is "
                f"no longer field {number}): install the livekit version rtc_trio pins"
            )
    events = ffi_pb2.FfiEvent.DESCRIPTOR.fields_by_name
    requests = ffi_pb2.FfiRequest.DESCRIPTOR.fields_by_name
    return (events["capture_audio_frame"].number, events["audio_stream_event"].number,
            requests["capture_audio_frame"].number)


def check_usable() -> None:
    """Raise if the native library cannot be used here; load it on first use."""
    if _unusable is not None:
        raise _unusable
    if not _ready:
        _initialize()


def next_async_id() -> int:
    return next(_async_ids)


def request(req: ffi_pb2.FfiRequest) -> ffi_pb2.FfiResponse:
    """Send a synchronous request; a refusal raises :class:`RtcError` naming it."""
    check_usable()
    data = req.SerializeToString()
    res_ptr = ffi.new("const uint8_t **")
    res_len = ffi.new("size_t *")
    handle = lib.rtc_request(data, len(data), res_ptr, res_len)
    if handle == 0:
        raise RtcError(_refused(req))
    try:
        return ffi_pb2.FfiResponse.FromString(memoryview(ffi.buffer(res_ptr[0], res_len[0])))  # type: ignore[arg-type]
    finally:
        lib.rtc_drop_handle(handle)


def request_discard(req: ffi_pb2.FfiRequest) -> None:
    """Send a request whose response is not needed (the hot path of captures)."""
    check_usable()
    data = req.SerializeToString()
    if not lib.rtc_request_discard(data, len(data)):
        raise RtcError(_refused(req))


def _refused(req: ffi_pb2.FfiRequest) -> str:
    return (
        f"livekit_ffi refused the {req.WhichOneof('message')} request "
        "(its reason is logged at debug level to the 'rtc_trio' logger)"
    )


def send_expecting_reply(req: ffi_pb2.FfiRequest, name: str) -> _router.Subscription[Any]:
    """Send a request that completes by callback; the subscription its callback comes to.

    The reply's route is registered under a client-chosen async id before the request goes
    out, so it cannot be missed; a refused request leaves no route behind. The caller closes
    the subscription (a reply that comes after that is dropped on arrival).
    """
    async_id = next_async_id()
    getattr(req, name).request_async_id = async_id
    reply: _router.Subscription[Any] = _router.Subscription(1)
    _router.expect_once(async_id, reply)
    try:
        request(req)
    except BaseException:
        reply.close()
        raise
    return reply


async def request_async(req: ffi_pb2.FfiRequest, name: str) -> Any:
    """Send a request that completes by callback; return the callback message.
    Cancelled while waiting: the late reply is dropped."""
    reply = send_expecting_reply(req, name)
    try:
        return await reply.receive()
    finally:
        reply.close()


def on_event(name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register the handler of one kind of FfiEvent (for kinds routed by other modules)."""

    def register(handler: Callable[[Any], None]) -> Callable[[Any], None]:
        _event_handlers[name] = handler
        return handler

    return register


@ffi.def_extern()  # type: ignore[untyped-decorator]
def rtc_on_event(data: Any, size: int) -> None:
    """Native threads: parse, route, return. Never blocks, never raises into C."""
    try:
        event = ffi_pb2.FfiEvent.FromString(memoryview(ffi.buffer(data, size)))  # type: ignore[arg-type]
        name = event.WhichOneof("message") or ""
        handler = _event_handlers.get(name)
        if handler is not None:
            handler(getattr(event, name))
        elif name in _ASYNC_REPLIES:
            reply = getattr(event, name)
            _router.deliver(reply.async_id, reply)
    except Exception:  # pragma: no cover - a bug here must not kill a native thread
        logger.exception("rtc_trio failed to handle a native event")


_ASYNC_REPLIES = frozenset(
    field.name
    for field in ffi_pb2.FfiEvent.DESCRIPTOR.oneofs_by_name["message"].fields
    if field.message_type is not None and "async_id" in field.message_type.fields_by_name
)

_LOG_LEVELS = {
    ffi_pb2.LogLevel.LOG_ERROR: logging.ERROR,
    ffi_pb2.LogLevel.LOG_WARN: logging.WARNING,
    ffi_pb2.LogLevel.LOG_INFO: logging.INFO,
    ffi_pb2.LogLevel.LOG_DEBUG: logging.DEBUG,
}
# Native error records whose failure the caller receives as an RtcError.
_RAISED_TO_CALLER = ("failed to handle request", "error while connecting to a room")
_NATIVE_DEBUG = os.environ.get("RTC_TRIO_DEBUG", "") in ("1", "true")


@on_event("logs")
def _on_logs(batch: ffi_pb2.LogBatch) -> None:
    for record in batch.records:
        level = _LOG_LEVELS.get(record.level)
        if level is None or (level == logging.DEBUG and not _NATIVE_DEBUG):
            continue  # trace, and debug noise unless asked for
        if record.message.startswith(_RAISED_TO_CALLER):
            level = logging.DEBUG  # the caller got it as an exception already
        logger.log(level, "%s: %s", record.target, record.message)


@on_event("panic")
def _on_panic(panic: ffi_pb2.Panic) -> None:
    global _unusable
    error = RtcError(f"the native LiveKit library panicked: {panic.message}")
    _unusable = error
    logger.critical("%s", error)
    _router.fail_all(error)
    lib.rtc_capture_wake_all()  # audio sources waiting for a capture that may never complete


def _dispose() -> None:
    """At exit: dispose the library, or after a panic at least keep native threads out of
    a finalizing interpreter (one ended mid-callback aborts the process)."""
    global _unusable
    if _unusable is None:
        _unusable = RtcError("the native LiveKit library was disposed (interpreter exit)")
        lib.rtc_dispose()
    elif not _forked:
        lib.rtc_close_callbacks()
    _handles.forget_all()


def _after_fork_in_child() -> None:
    global _unusable, _forked
    _forked = True  # no native threads here: nothing to close at exit
    if _ready:
        _unusable = RtcError(
            "rtc_trio cannot be used in a child forked after the native LiveKit library was "
            "loaded; start child processes with multiprocessing's 'spawn' method"
        )
        _handles.forget_all()


os.register_at_fork(after_in_child=_after_fork_in_child)
