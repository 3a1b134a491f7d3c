"""The native side of rooms: what livekit_ffi's threads run for connects, publishes and room events.

Every handler here runs on livekit_ffi's threads (tokio workers, several at once, inside the
native event callback) and must not block. A handler only records the native handles its event
carries as ours and hands the event on: to the router, or, for a connect whose caller stopped
waiting, to the trio run that caller ran in (``TrioToken.run_sync_soon``, see :class:`Handoff`).
None of them sends a native request (but :class:`Handoff`, once its trio run is over); the only
native call they make is dropping handles nobody will use (``livekit_ffi_drop_handle``), as the
router does for events nobody waits for. The trio side reaches the registries here only through
the functions at the end of this module, which take the lock and never block either.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import trio

from rtc_trio import _handles, _native, _router
from rtc_trio._proto import room_pb2

logger = logging.getLogger("rtc_trio")


@dataclass(frozen=True)
class Handoff:
    """Where the reply of a connect whose caller stopped waiting goes: ``to``, run on the
    thread of the trio run behind ``token``, as a ``run_sync_soon`` callback (not a task).

    If that run has finished, ``to`` runs here on the native thread instead: the one place
    a request goes out from inside the native callback. Doing nothing is worse: livekit_ffi
    waits 15 s for the room's ready_for_room_event, then panics (seen here), which makes
    the native library unusable for the rest of the process.
    """

    token: trio.lowlevel.TrioToken
    to: Callable[[room_pb2.ConnectCallback], None]

    def __call__(self, callback: room_pb2.ConnectCallback) -> None:
        try:
            self.token.run_sync_soon(_guarded, self.to, callback)
        except trio.RunFinishedError:
            _guarded(self.to, callback)


def _guarded(function: Callable[[room_pb2.ConnectCallback], None],
             callback: room_pb2.ConnectCallback) -> None:
    try:
        function(callback)
    except Exception:  # a bug here must not crash the trio run, nor reach a native thread
        logger.exception("rtc_trio failed to finish a late connect")


@dataclass
class _Connect:
    result: room_pb2.ConnectCallback | None = None  # the reply, once it came to its waiter
    late: Handoff | None = None  # set when its caller stopped waiting: where the reply goes


_lock = threading.Lock()
_connects: dict[int, _Connect] = {}  # connect async id -> its waiter
_abandoned_rooms: dict[int, list[int]] = {}  # room handle -> handles to release once disconnected
_abandoned_disconnects: dict[int, int] = {}  # disconnect async id -> its room handle


def result_handles(result: room_pb2.ConnectCallback.Result) -> list[int]:
    """Every native handle a successful connect's reply carries (the room's last)."""
    ids = [result.local_participant.handle.id]
    for entry in result.participants:
        ids.append(entry.participant.handle.id)
        ids.extend(pub.handle.id for pub in entry.publications)
    ids.append(result.room.handle.id)
    return ids


# -- handlers: livekit_ffi's threads ----------------------------------------------------------

@_native.on_event("connect")
def _on_connect(callback: room_pb2.ConnectCallback) -> None:
    succeeded = callback.WhichOneof("message") == "result"
    with _lock:
        pending = _connects.get(callback.async_id)
        if pending is None:
            return  # not a connect of ours
        if succeeded:
            for handle in result_handles(callback.result):
                _handles.acquire(handle)
        late = pending.late
        if late is None:
            pending.result = callback
        else:
            del _connects[callback.async_id]
    if late is None:
        _router.deliver(callback.async_id, True)  # wakes its waiter
    elif succeeded:
        late(callback)  # its caller left: its trio run disconnects the room


@_native.on_event("disconnect")
def _on_disconnect(callback: room_pb2.DisconnectCallback) -> None:
    if not release_abandoned(callback.async_id):
        _router.deliver(callback.async_id, callback)


@_native.on_event("publish_track")
def _on_publish_track(callback: room_pb2.PublishTrackCallback) -> None:
    handle = 0
    if callback.WhichOneof("message") == "publication":
        handle = _handles.acquire(callback.publication.handle.id)
    _router.deliver(callback.async_id, callback, handle)  # released if its caller left


_Owner = Callable[[Any], "tuple[int, bytes | None]"]
_OWNERS: dict[str, _Owner] = {}
"""By room event kind: what takes the native handle an event carries (recorded as ours) and a
data payload's bytes. An event kind absent here carries neither."""


def _owns(*kinds: str) -> Callable[[_Owner], _Owner]:
    def register(owner: _Owner) -> _Owner:
        for kind in kinds:
            _OWNERS[kind] = owner
        return owner
    return register


@_owns("participant_connected")
def _participant(msg: Any) -> tuple[int, bytes | None]:
    return _handles.acquire(msg.info.handle.id), None


@_owns("track_published")
def _publication(msg: Any) -> tuple[int, bytes | None]:
    return _handles.acquire(msg.publication.handle.id), None


@_owns("track_subscribed")
def _track(msg: Any) -> tuple[int, bytes | None]:
    return _handles.acquire(msg.track.handle.id), None


@_owns("local_track_republished")
def _republished(msg: Any) -> tuple[int, bytes | None]:
    handle = msg.publication_handle
    return (0 if _handles.is_held(handle) else _handles.acquire(handle)), None


@_owns("data_packet_received")
def _data_packet(msg: Any) -> tuple[int, bytes | None]:
    """A user packet's payload is copied out and its buffer released at once."""
    if not msg.HasField("user"):
        return 0, None
    owned = msg.user.data
    handle = _handles.acquire(owned.handle.id)
    payload = ctypes.string_at(owned.data.data_ptr, owned.data.data_len) if owned.data.data_len else b""
    _handles.release(handle)
    return 0, payload


@_owns("byte_stream_opened", "text_stream_opened")
def _stream_reader(msg: Any) -> tuple[int, bytes | None]:
    """A data stream's reader: the room hands it to the block listening to its topic."""
    return _handles.acquire(msg.reader.handle.id), None


_NOT_DELIVERED = frozenset({"stream_header_received", "stream_chunk_received", "stream_trailer_received"})
"""Room events dropped here: the raw packets of data streams, which their readers deliver
(passing them on would copy every chunk once more, to every event channel)."""


@_owns("data_track_published")
def _data_track(msg: Any) -> tuple[int, bytes | None]:
    """Data tracks are not supported here: released at once."""
    _handles.release(_handles.acquire(msg.track.handle.id))
    return 0, None


@_native.on_event("room_event")
def _on_room_event(event: room_pb2.RoomEvent) -> None:
    kind = event.WhichOneof("message") or ""
    if kind in _NOT_DELIVERED:
        return
    owner = _OWNERS.get(kind)
    handle, payload = owner(getattr(event, kind)) if owner is not None else (0, None)
    with _lock:
        held = _abandoned_rooms.get(event.room_handle)
        if held is not None:  # a room being disconnected for a caller that left
            if handle:
                held.append(handle)
            return
    _router.deliver(event.room_handle, (event, payload), handle)


# -- the trio side's way in: lock only, never blocks -------------------------------------------

def expect_connect(async_id: int) -> None:
    """Register the waiter of connect ``async_id`` (before its request goes out)."""
    with _lock:
        _connects[async_id] = _Connect()


def withdraw_connect(async_id: int, late: Handoff | None) -> room_pb2.ConnectCallback | None:
    """Stop waiting for connect ``async_id``: its reply if it came (its handles are the
    caller's now). Otherwise a reply that comes later goes to ``late``, or, if None (the
    request never went out), nowhere."""
    with _lock:
        pending = _connects.get(async_id)
        if pending is None:
            return None
        if pending.result is None and late is not None:
            pending.late = late
            return None
        del _connects[async_id]
        return pending.result


def abandon_room(result: room_pb2.ConnectCallback.Result, disconnect_id: int) -> None:
    """The room of ``result`` is being disconnected for nobody (its caller left): its handles,
    and those its events bring meanwhile, are released when the reply of ``disconnect_id`` comes."""
    with _lock:
        _abandoned_rooms[result.room.handle.id] = result_handles(result)
        _abandoned_disconnects[disconnect_id] = result.room.handle.id


def release_abandoned(disconnect_id: int) -> bool:
    """Any thread: the abandoned room of ``disconnect_id`` is disconnected (or its disconnect
    failed): release its handles. False if ``disconnect_id`` is not such a disconnect."""
    with _lock:
        room_id = _abandoned_disconnects.pop(disconnect_id, None)
        if room_id is None:
            return False
        handles = _abandoned_rooms.pop(room_id, [])
    for handle in handles:
        _handles.release(handle)
    return True
