"""RPC between participants, and a participant's other small messages: DTMF and transcriptions.

A call (:meth:`RpcEndpoint.perform`) waits for its reply under a trio cancel scope of the
caller's response timeout. Serving (:meth:`RpcEndpoint.serve`) registers methods natively for
the lifetime of an ``async with`` block; every invocation runs as a task of a nursery that
block owns, under the caller's response deadline, and is always answered: with the handler's
result, its :class:`RpcError`, or an error when it failed, ran out of time or was cancelled.

Invocations reach trio through the router, keyed by the local participant's handle. One task
per participant, started by its first ``serve_rpc`` in the room's nursery and ended with the
room, hands each to the block serving its method, or answers UNSUPPORTED_METHOD at once for a
method no block serves any more (one whose block ended while the call was on its way).
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, NoReturn, Sequence

import trio

from rtc_trio import _native, _router, _validate
from rtc_trio._errors import RpcError, RtcError
from rtc_trio._proto import ffi_pb2

logger = logging.getLogger("rtc_trio")

MAX_RPC_PAYLOAD = 15 * 1024
"""Largest request or response payload, in UTF-8 bytes: the protocol's limit for an RPC
carried in one data packet, which every client accepts. A larger request is a ValueError
before anything is sent; a larger response is answered with RESPONSE_PAYLOAD_TOO_LARGE."""

MAX_RPC_METHOD = 14 * 1024
"""Longest method name, in UTF-8 bytes. The call travels as a data stream whose header (one
packet of at most 15,000 bytes) carries the method: livekit_ffi refuses a larger header
(SEND_FAILED; measured: a 14,752-byte method fails with a 15 KiB payload, 14,700 passes). 14 KiB
leaves room for the destination identity and the header's other fields."""

MAX_RESPONSE_TIMEOUT = 3600.0
"""Longest ``response_timeout`` taken, in seconds."""

ROUND_TRIP_ALLOWANCE_MS = 7000
"""What livekit_ffi takes off a call's response timeout before it tells the callee: it waits
this long for the callee's acknowledgement, then the full timeout for the answer, and sends
the callee ``max(timeout - allowance, 1 s)`` as its deadline (rust-sdks ``perform_rpc``,
``max_round_trip_latency``, 7 s by default). rtc_trio hands the native side the caller's
timeout plus this allowance, and says so explicitly (``max_round_trip_latency_ms``): the
callee's handler then gets the caller's own deadline, while the caller's wait is cut at its
timeout by rtc_trio's cancel scope. The native timeout is never under 7 s, so the short-timeout
panic of older libraries (a subtraction that overflowed under 2 s, fixed in rust-sdks 83bd7c7a)
cannot happen."""

MAX_ERROR_MESSAGE = 256
"""Longest RPC error message sent, in UTF-8 bytes (the protocol's limit): a longer one a
handler raises is cut to it, and ``data`` to :data:`MAX_RPC_PAYLOAD`. Characters UTF-8
cannot carry (lone surrogates) are sent as ``?``. An oversized error is otherwise never
delivered: its caller would wait out its whole timeout."""

PENDING_INVOCATIONS = 1024
"""Invocations waiting to be handed to their block; beyond, the oldest is dropped (its caller
times out). The hand-over is a few microseconds: this fills only if trio is blocked."""

DTMF_DIGITS = "0123456789*#ABCD"
"""The digit of each SIP DTMF event code (RFC 4733): 0-9, ``*`` 10, ``#`` 11, A-D 12-15."""


@dataclass(frozen=True)
class RpcInvocation:
    """One incoming call, as its handler receives it."""

    method: str
    caller_identity: str
    request_id: str
    """The call's id, the same on both sides (for logs)."""
    payload: str
    response_timeout: float
    """Seconds the caller waits for the answer, as its request says: the handler is cancelled
    after that. An rtc_trio caller sends the timeout it asked for (at least 1 s, the native
    floor); other SDKs send theirs less their round-trip allowance."""


RpcHandler = Callable[[RpcInvocation], Awaitable["str | None"]]


@dataclass(frozen=True)
class TranscriptionSegment:
    """A piece of a transcription; times in milliseconds (the protocol's unit)."""

    id: str
    text: str
    start_time: int = 0
    end_time: int = 0
    final: bool = False
    language: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "text", "language"):
            _validate.string(name, getattr(self, name))
        for name in ("start_time", "end_time"):
            _validate.integer(name, getattr(self, name), 0, (1 << 63) - 1, unit=" ms")
        _validate.boolean("final", self.final)

    @classmethod
    def _from_proto(cls, segment: Any) -> TranscriptionSegment:
        return cls(segment.id, segment.text, segment.start_time, segment.end_time,
                   segment.final, segment.language)


_APPLICATION_ERROR = RpcError(RpcError.APPLICATION_ERROR, "Application error in method handler")


@dataclass(eq=False)
class _Served:
    handler: RpcHandler
    nursery: trio.Nursery
    running: set[trio.CancelScope] = field(default_factory=set)
    """The cancel scopes of its invocations still running."""


def _payload(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    size = len(value.encode())
    if size > MAX_RPC_PAYLOAD:
        raise ValueError(f"{name} is {size} bytes; an RPC payload is at most {MAX_RPC_PAYLOAD} bytes")
    return value


def _method(value: object) -> str:
    method = _validate.string("method", value)
    if not method:
        raise ValueError("method must not be empty")
    size = len(method.encode())
    if size > MAX_RPC_METHOD:
        raise ValueError(f"method is {size} bytes; a method name is at most {MAX_RPC_METHOD} bytes")
    return method


def _handlers(handlers: object) -> dict[str, RpcHandler]:
    if not isinstance(handlers, Mapping):
        raise TypeError(f"handlers must be a mapping of method name to handler, not {type(handlers).__name__}")
    checked: dict[str, RpcHandler] = {}
    for method, handler in handlers.items():
        if not callable(handler):
            raise TypeError(f"the handler of {method!r} is not callable")
        checked[_method(method)] = handler
    if not checked:
        raise ValueError("serve_rpc needs at least one method")
    return checked


class RpcEndpoint:
    """One local participant's RPC, DTMF and transcriptions; built by the participant."""

    def __init__(self, handle_id: int, closed: Callable[[], bool],
                 remote: Mapping[str, object], nursery: Callable[[], trio.Nursery | None]) -> None:
        self._handle_id = handle_id
        self._closed = closed
        self._remote = remote  # identities in the room (a live view)
        self._nursery = nursery  # the room's nursery while its block runs
        self._served: dict[str, _Served] = {}
        self._dispatching = False
        self._ended = False  # the room disconnected: no call comes or can be answered any more

    def _check_open(self) -> None:
        if self._closed():
            raise trio.ClosedResourceError("the room is closed")

    # -- calling -----------------------------------------------------------------------
    async def perform(self, destination_identity: str, method: str, payload: str,
                      response_timeout: float) -> str:
        destination = _validate.string("destination_identity", destination_identity)
        method = _method(method)
        payload = _payload("payload", payload)
        seconds = _validate.number("response_timeout", response_timeout, unit=" of seconds")
        if seconds > MAX_RESPONSE_TIMEOUT:
            raise ValueError(f"response_timeout must be at most {MAX_RESPONSE_TIMEOUT:g} s, got {seconds:g}")
        self._check_open()
        if destination not in self._remote:
            raise ValueError(f"no participant with identity {destination!r} in the room")
        req = ffi_pb2.FfiRequest()
        call = req.perform_rpc
        call.local_participant_handle = self._handle_id
        call.destination_identity = destination
        call.method = method
        call.payload = payload
        call.response_timeout_ms = math.ceil(seconds * 1000) + ROUND_TRIP_ALLOWANCE_MS
        call.max_round_trip_latency_ms = ROUND_TRIP_ALLOWANCE_MS
        reply = _native.send_expecting_reply(req, "perform_rpc")
        try:
            with trio.move_on_after(seconds):
                callback = await reply.receive()
                if callback.HasField("error"):
                    error = callback.error
                    raise RpcError(error.code, error.message, error.data)
                return str(callback.payload)
        finally:
            reply.close()  # a reply that comes after this is dropped on arrival
        raise RpcError(RpcError.RESPONSE_TIMEOUT, f"Response timeout: no answer within {seconds:g} s")

    # -- serving -----------------------------------------------------------------------
    @asynccontextmanager
    async def serve(self, handlers: Mapping[str, RpcHandler]) -> AsyncIterator[None]:
        checked = _handlers(handlers)
        self._check_open()
        taken = sorted(m for m in checked if m in self._served)
        if taken:
            raise ValueError(f"already served by another serve_rpc block: {', '.join(map(repr, taken))}")
        room_nursery = self._nursery()
        if room_nursery is None:
            raise trio.ClosedResourceError("the room is closing")
        self._start_dispatch(room_nursery)
        raised: list[BaseException] = []
        try:
            async with trio.open_nursery() as nursery:
                try:
                    for method, handler in checked.items():
                        self._served[method] = _Served(handler, nursery)
                        self._register(method)
                    try:
                        yield
                    except BaseException as error:
                        raised.append(error)
                        raise
                finally:
                    self._stop_serving(checked)
                    nursery.cancel_scope.cancel()  # running handlers answer with an error
        except BaseExceptionGroup as group:
            if raised and len(group.exceptions) == 1 and group.exceptions[0] is raised[0]:
                _reraise(raised[0])  # the body's own, not a Cancelled a failing child caused
            raise

    def _register(self, method: str) -> None:
        req = ffi_pb2.FfiRequest()
        req.register_rpc_method.local_participant_handle = self._handle_id
        req.register_rpc_method.method = method
        _native.request(req)

    def _stop_serving(self, methods: Mapping[str, RpcHandler]) -> None:
        """Unregister ``methods`` natively; an invocation already on its way is answered
        UNSUPPORTED_METHOD by the dispatcher."""
        for method in methods:
            if self._served.pop(method, None) is None:
                continue
            if self._closed():
                continue
            req = ffi_pb2.FfiRequest()
            req.unregister_rpc_method.local_participant_handle = self._handle_id
            req.unregister_rpc_method.method = method
            try:
                _native.request(req)
            except RtcError as error:  # the room went meanwhile
                logger.debug("unregister_rpc_method %r: %s", method, error)

    def _start_dispatch(self, room_nursery: trio.Nursery) -> None:
        if self._dispatching:
            return
        sub: _router.Subscription[Any] = _router.subscribe(
            self._handle_id, _router.Subscription(PENDING_INVOCATIONS))
        self._dispatching = True
        room_nursery.start_soon(self._dispatch, sub)

    async def _dispatch(self, sub: _router.Subscription[Any]) -> None:
        """Hand every invocation to the block serving its method, until the room ends."""
        try:
            while True:
                event = await sub.receive()
                invocation = RpcInvocation(event.method, event.caller_identity, event.request_id,
                                           event.payload, event.response_timeout_ms / 1000)
                served = self._served.get(event.method)
                if served is None:
                    self._answer(event.invocation_id, error=RpcError(
                        RpcError.UNSUPPORTED_METHOD, "Method not supported at destination"))
                else:
                    served.nursery.start_soon(self._invoke, served, event.invocation_id, invocation)
        except (trio.EndOfChannel, trio.ClosedResourceError, RtcError):
            pass
        finally:
            sub.close()
            self._dispatching = False

    async def _invoke(self, served: _Served, invocation_id: int, invocation: RpcInvocation) -> None:
        """Run one handler under the caller's deadline; answer the caller whatever happens
        (unless the room disconnected: then it is cancelled and nobody is left to answer)."""
        answer: tuple[str, RpcError | None] = ("", RpcError(
            RpcError.APPLICATION_ERROR, "the handler was cancelled: its serve_rpc block ended"))
        with trio.CancelScope() as running:
            served.running.add(running)
            if self._ended:
                running.cancel()
            try:
                with trio.move_on_after(invocation.response_timeout) as deadline:
                    answer = await _run(served.handler, invocation)
                if deadline.cancelled_caught:
                    answer = ("", RpcError(RpcError.RESPONSE_TIMEOUT, "Response timeout"))
            finally:
                served.running.discard(running)
                if not self._ended:
                    self._answer(invocation_id, *answer)

    def room_ended(self) -> None:
        """The room disconnected: cancel every handler still running (serve blocks stay open
        until their ``async with`` ends, serving nothing)."""
        self._ended = True
        for served in self._served.values():
            for running in list(served.running):
                running.cancel()

    def _answer(self, invocation_id: int, payload: str = "", error: RpcError | None = None) -> None:
        """Answer an invocation; never raises: an answer that cannot be built or sent is
        logged, and one that cannot be built goes as APPLICATION_ERROR."""
        if self._closed():
            return
        try:
            req = self._response(invocation_id, payload, error)
        except Exception:
            logger.exception("rtc_trio could not build an RPC answer: its caller gets APPLICATION_ERROR")
            req = self._response(invocation_id, "", _APPLICATION_ERROR)
        try:
            refused = _native.request(req).rpc_method_invocation_response.error
        except Exception as failure:
            logger.debug("rtc_trio could not answer an RPC invocation: %s", failure)
            return
        if refused:
            logger.debug("rtc_trio could not answer an RPC invocation: %s", refused)

    def _response(self, invocation_id: int, payload: str, error: RpcError | None) -> ffi_pb2.FfiRequest:
        req = ffi_pb2.FfiRequest()
        response = req.rpc_method_invocation_response
        response.local_participant_handle = self._handle_id
        response.invocation_id = invocation_id
        if error is None:
            response.payload = payload
        else:
            response.error.code = error.code
            response.error.message = _clip(error.message, MAX_ERROR_MESSAGE)
            if error.data:
                response.error.data = _clip(error.data, MAX_RPC_PAYLOAD)
        return req

    # -- DTMF and transcriptions -------------------------------------------------------
    async def publish_dtmf(self, code: int, digit: str | None) -> None:
        code = _validate.integer("code", code, 0, len(DTMF_DIGITS) - 1)
        expected = DTMF_DIGITS[code]
        if digit is not None:
            digit = _validate.string("digit", digit)
            if digit.upper() != expected:
                raise ValueError(f"the digit of code {code} is {expected!r}, not {digit!r}")
        digit = expected
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.publish_sip_dtmf.local_participant_handle = self._handle_id
        req.publish_sip_dtmf.code = code
        req.publish_sip_dtmf.digit = digit
        await _settle(req, "publish_sip_dtmf")

    async def publish_transcription(self, participant_identity: str, track_sid: str,
                                    segments: Sequence[TranscriptionSegment], local_identity: str) -> None:
        participant_identity = _validate.string("participant_identity", participant_identity)
        track_sid = _validate.string("track_sid", track_sid)
        if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence) or not all(
                isinstance(s, TranscriptionSegment) for s in segments):
            raise TypeError("segments must be a sequence of TranscriptionSegment")
        self._check_open()
        if participant_identity != local_identity and participant_identity not in self._remote:
            raise ValueError(f"no participant with identity {participant_identity!r} in the room")
        req = ffi_pb2.FfiRequest()
        publish = req.publish_transcription
        publish.local_participant_handle = self._handle_id
        publish.participant_identity = participant_identity
        publish.track_id = track_sid
        for segment in segments:
            publish.segments.add(id=segment.id, text=segment.text, start_time=segment.start_time,
                                 end_time=segment.end_time, final=segment.final,
                                 language=segment.language)
        await _settle(req, "publish_transcription")


async def _run(handler: RpcHandler, invocation: RpcInvocation) -> tuple[str, RpcError | None]:
    """The handler's answer: its payload, or the error the caller gets."""
    try:
        result = await handler(invocation)
    except RpcError as error:
        return "", error
    except Exception:
        logger.exception("the RPC handler of %r raised: its caller gets APPLICATION_ERROR",
                         invocation.method)
        return "", _APPLICATION_ERROR
    if result is None:
        return "", None
    if not isinstance(result, str):
        logger.error("the RPC handler of %r returned %s, not str: its caller gets "
                     "APPLICATION_ERROR", invocation.method, type(result).__name__)
        return "", _APPLICATION_ERROR
    try:
        size = len(result.encode())
    except UnicodeEncodeError:
        logger.error("the RPC handler of %r returned a str UTF-8 cannot carry (a lone "
                     "surrogate): its caller gets APPLICATION_ERROR", invocation.method)
        return "", _APPLICATION_ERROR
    if size > MAX_RPC_PAYLOAD:
        return "", RpcError(RpcError.RESPONSE_PAYLOAD_TOO_LARGE, "Response payload too large")
    return result, None


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes on a character boundary, any character
    UTF-8 cannot carry replaced by ``?``."""
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")


async def _settle(req: ffi_pb2.FfiRequest, name: str) -> None:
    callback = await _native.request_async(req, name)
    if callback.HasField("error") and callback.error:
        raise RtcError(f"{name} failed: {callback.error}")


@_native.on_event("rpc_method_invocation")
def _on_invocation(event: Any) -> None:
    """Native threads: hand the invocation to its participant's dispatcher."""
    _router.deliver(event.local_participant_handle, event)


def _reraise(error: BaseException) -> NoReturn:
    """Raise the body's own exception out of the nursery's group, keeping its context."""
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context
        del error, context
