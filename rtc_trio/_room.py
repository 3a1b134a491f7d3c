"""Rooms: ``async with rtc_trio.connect(url, token) as room`` and the state kept from its events.

How events flow: the native callback hands each room event (with the one native handle it may
carry, already recorded as ours) to the room's route in the router. A task in a nursery owned
by ``connect`` drains that route, updates the room's state and fans typed events out to the
bounded iterators opened with :meth:`Room.events`. Nothing outlives the ``async with`` block.

A connect the caller stops waiting for (cancelled, timed out) is finished on the native side:
its late callback's handles are released only after the room it created is disconnected.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import weakref
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, AsyncIterator, Mapping, NoReturn

import trio

from rtc_trio import _handles, _native, _router
from rtc_trio import _room_events as ev
from rtc_trio._errors import RtcError
from rtc_trio._handles import NativeHandle
from rtc_trio._participant import LocalParticipant, Participant, RemoteParticipant, RoomLink
from rtc_trio._publications import LocalTrackPublication, RemoteTrackPublication
from rtc_trio._proto import ffi_pb2, participant_pb2, room_pb2, track_pb2
from rtc_trio._track import RemoteAudioTrack, RemoteTrack, RemoteVideoTrack, TrackKind

logger = logging.getLogger("rtc_trio")

ROOM_INBOX_CAPACITY = 4096
"""Room events waiting for the room's own task, beyond which the oldest *transient* event
(a data packet, a speaker or quality update, a transcription) is dropped. State events (joins,
publications, subscriptions, departures...) are never dropped: losing one would let
``remote_participants`` drift from the server's with no error. They are bounded by what really
happens in the room, transient ones by this number."""
_TRANSIENT_EVENTS = frozenset({
    "data_packet_received", "active_speakers_changed", "connection_quality_changed",
    "transcription_received", "chat_message", "stream_header_received", "stream_chunk_received",
    "stream_trailer_received", "data_channel_low_threshold_changed",
})


def _transient(item: tuple[room_pb2.RoomEvent, bytes | None]) -> bool:
    return item[0].WhichOneof("message") in _TRANSIENT_EVENTS


DISCONNECT_TIMEOUT = 10.0


class ConnectError(RtcError):
    """Connecting to a room failed; the message carries the server's or the library's reason."""


# -- the native side: connect callbacks, abandoned rooms, room events -----------------------

@dataclass
class _PendingConnect:
    result: room_pb2.ConnectCallback | None = None


_lock = threading.Lock()
_connects: dict[int, _PendingConnect] = {}  # connect async id -> its waiter
_abandoned_rooms: dict[int, list[int]] = {}  # room handle -> handles to release once disconnected
_abandoned_disconnects: dict[int, int] = {}  # disconnect async id -> room handle


def _result_handles(result: room_pb2.ConnectCallback.Result) -> list[int]:
    ids = [result.local_participant.handle.id]
    for entry in result.participants:
        ids.append(entry.participant.handle.id)
        ids.extend(pub.handle.id for pub in entry.publications)
    ids.append(result.room.handle.id)
    return ids


@_native.on_event("connect")
def _on_connect(callback: room_pb2.ConnectCallback) -> None:
    with _lock:
        pending = _connects.get(callback.async_id)
        if callback.WhichOneof("message") == "result":
            for handle in _result_handles(callback.result):
                _handles.acquire(handle)
        if pending is not None:
            pending.result = callback
    if pending is None:
        _abandon(callback)  # its caller left: disconnect the room, release everything
    else:
        _router.deliver(callback.async_id, True)


def _abandon(callback: room_pb2.ConnectCallback) -> None:
    """Finish a connect nobody waits for (any thread): disconnect, then release its handles."""
    if callback.WhichOneof("message") != "result":
        return
    logger.debug("a connect to room %r completed after its caller left: disconnecting it",
                 callback.result.room.info.name)
    room_id = callback.result.room.handle.id
    disconnect_id = _native.next_async_id()
    with _lock:
        _abandoned_rooms[room_id] = _result_handles(callback.result)
        _abandoned_disconnects[disconnect_id] = room_id
    try:
        req = ffi_pb2.FfiRequest()
        req.ready_for_room_event.room_handle = room_id  # the native side waits for it
        _native.request(req)
        req = ffi_pb2.FfiRequest()
        req.disconnect.room_handle = room_id
        req.disconnect.request_async_id = disconnect_id
        _native.request(req)
    except RtcError:
        _release_abandoned(disconnect_id)


def _release_abandoned(disconnect_id: int) -> bool:
    with _lock:
        room_id = _abandoned_disconnects.pop(disconnect_id, None)
        if room_id is None:
            return False
        handles = _abandoned_rooms.pop(room_id, [])
    for handle in handles:
        _handles.release(handle)
    return True


@_native.on_event("disconnect")
def _on_disconnect(callback: room_pb2.DisconnectCallback) -> None:
    if not _release_abandoned(callback.async_id):
        _router.deliver(callback.async_id, callback)


@_native.on_event("publish_track")
def _on_publish_track(callback: room_pb2.PublishTrackCallback) -> None:
    handle = 0
    if callback.WhichOneof("message") == "publication":
        handle = _handles.acquire(callback.publication.handle.id)
    _router.deliver(callback.async_id, callback, handle)  # released if its caller left


def _owned_handle(event: room_pb2.RoomEvent, which: str) -> tuple[int, bytes | None]:
    """Native side: the handle ``event`` carries (recorded as ours), and a data payload's bytes.

    Data payloads are copied out and their buffer released at once; readers of data streams
    and data tracks (not supported here) are released at once too.
    """
    if which == "participant_connected":
        return _handles.acquire(event.participant_connected.info.handle.id), None
    if which == "track_published":
        return _handles.acquire(event.track_published.publication.handle.id), None
    if which == "track_subscribed":
        return _handles.acquire(event.track_subscribed.track.handle.id), None
    if which == "local_track_republished":
        handle = event.local_track_republished.publication_handle
        return (0 if _handles.is_held(handle) else _handles.acquire(handle)), None
    if which == "data_packet_received" and event.data_packet_received.HasField("user"):
        owned = event.data_packet_received.user.data
        handle = _handles.acquire(owned.handle.id)
        payload = ctypes.string_at(owned.data.data_ptr, owned.data.data_len) if owned.data.data_len else b""
        _handles.release(handle)
        return 0, payload
    unsupported = {"byte_stream_opened": "reader", "text_stream_opened": "reader",
                   "data_track_published": "track"}.get(which)
    if unsupported is not None:
        _handles.release(_handles.acquire(getattr(getattr(event, which), unsupported).handle.id))
    return 0, None


@_native.on_event("room_event")
def _on_room_event(event: room_pb2.RoomEvent) -> None:
    which = event.WhichOneof("message") or ""
    handle, payload = _owned_handle(event, which)
    with _lock:
        held = _abandoned_rooms.get(event.room_handle)
        if held is not None:
            if handle:
                held.append(handle)
            return
    _router.deliver(event.room_handle, (event, payload), handle)


async def _request_connect(req: ffi_pb2.FfiRequest, url: str, timeout: float) -> room_pb2.ConnectCallback:
    """Send ``req`` (a ConnectRequest); its successful callback, whose handles are ours now.

    Waits at most ``timeout`` seconds; a callback that comes later is abandoned.
    """
    async_id = _native.next_async_id()
    req.connect.request_async_id = async_id
    pending = _PendingConnect()
    wake: _router.Subscription[bool] = _router.Subscription(1)
    with _lock:
        _connects[async_id] = pending
    _router.expect_once(async_id, wake)

    def withdraw() -> room_pb2.ConnectCallback | None:
        with _lock:
            _connects.pop(async_id, None)
            return pending.result

    try:
        _native.request(req)
        with trio.move_on_after(timeout):
            await wake.receive()
    except BaseException:
        late = withdraw()
        if late is not None:
            _abandon(late)
        raise
    finally:
        wake.close()
    callback = withdraw()
    if callback is None:  # timed out: the late callback, if any, is abandoned
        raise ConnectError(f"could not connect to {url} within {timeout:g} s")
    if callback.WhichOneof("message") != "result":
        raise ConnectError(f"could not connect to {url}: {callback.error}")
    return callback


# -- the trio side ------------------------------------------------------------------------

class Room:
    """A connected room: its state, kept current from native events, and its participants.

    Obtained from :func:`connect`; valid inside its ``async with`` block.
    """

    def __init__(self, result: room_pb2.ConnectCallback.Result) -> None:
        self._owned: list[NativeHandle] = []
        self._handle = self._own(NativeHandle(result.room.handle.id))
        info = result.room.info
        self.name: str = info.name
        self.sid: str = info.sid
        self.metadata: str = info.metadata
        self.connection_state = ev.ConnectionState.CONNECTED
        self.disconnect_reason: ev.DisconnectReason | None = None
        self._iterators: weakref.WeakSet[ev.RoomEvents] = weakref.WeakSet()
        self._remote_participants: dict[str, RemoteParticipant] = {}
        self._eos = trio.Event()
        self._link = RoomLink(MappingProxyType(self._remote_participants), self._announce_local)
        self.local_participant = LocalParticipant(result.local_participant, self._link)
        self._own(self.local_participant._handle)
        for entry in result.participants:
            participant = RemoteParticipant(entry.participant)
            self._own(participant._handle)
            for owned in entry.publications:
                publication = RemoteTrackPublication(owned)
                self._own(publication._handle)
                participant.track_publications[publication.sid] = publication
            self._remote_participants[participant.identity] = participant
        self._sub: _router.Subscription[tuple[room_pb2.RoomEvent, bytes | None]] = \
            _router.subscribe(self._handle.id, _router.Subscription(ROOM_INBOX_CAPACITY, _transient))
        self._pump_scope = trio.CancelScope(shield=True)  # ended by connect, after disconnecting

    def _own(self, handle: NativeHandle) -> NativeHandle:
        self._owned.append(handle)
        if len(self._owned) > 256 and len(self._owned) % 256 == 0:
            self._owned = [h for h in self._owned if not h.released]
        return handle

    # -- public state -----------------------------------------------------------------
    @property
    def remote_participants(self) -> Mapping[str, RemoteParticipant]:
        """The other participants, by identity (a read-only live view).

        The room's task keeps it current from the room's events, in order. A stream ends from
        its own native events: one on a participant who leaves can end before this view (or
        ``participant.connected``) shows the departure. To act on a departure, wait for the
        :class:`ParticipantDisconnected` event; by then the view shows it.
        """
        return MappingProxyType(self._remote_participants)

    def events(self, *, capacity: int = ev.DEFAULT_EVENT_CAPACITY) -> ev.RoomEvents:
        """An async iterator over this room's events from now on; it ends when the room does.

        Call it first thing in the ``async with connect(...)`` block to see every event. It
        buffers up to ``capacity`` events (1 to 4096); a reader that falls behind loses the
        oldest, counted in its ``dropped``. The room's own state never loses an event.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        if not 1 <= capacity <= ev.MAX_EVENT_CAPACITY:
            raise ValueError(f"capacity must be between 1 and {ev.MAX_EVENT_CAPACITY}, got {capacity}")
        iterator = ev.RoomEvents(capacity)
        if self._link.closed or self._eos.is_set():
            iterator._end()
        else:
            self._iterators.add(iterator)
        return iterator

    def __repr__(self) -> str:
        return f"Room({self.name!r}, sid={self.sid!r}, {self.connection_state.name.lower()})"

    # -- the event pump -----------------------------------------------------------------
    async def _pump(self) -> None:
        """Apply every native event of this room, in order, until its end.

        An outer cancellation does not stop it: the room's state stays current while the
        block is left, until ``connect`` has disconnected and ends it.
        """
        with self._pump_scope:
            await self._apply_events()

    async def _apply_events(self) -> None:
        while True:
            try:
                event, payload = await self._sub.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                break
            except RtcError:  # the native library failed: nothing more will come
                self._connection_lost(ev.DisconnectReason.UNKNOWN_REASON)
                break
            which = event.WhichOneof("message") or ""
            if which == "eos":
                break
            try:
                typed = self._apply(event, which, payload)
            except Exception:  # a bug here must not stop the room's state from updating
                logger.exception("rtc_trio failed to apply the room event %s", which)
                continue
            if typed is not None:
                self._emit(typed)
            if which == "disconnected":
                self._end_iterators()
        self._eos.set()
        self._end_iterators()

    def _emit(self, event: ev.RoomEvent) -> None:
        for iterator in list(self._iterators):
            iterator._push(event)

    def _end_iterators(self) -> None:
        for iterator in list(self._iterators):
            iterator._end()
        self._iterators.clear()

    def _participant(self, identity: str) -> Participant | None:
        if identity == self.local_participant.identity:
            return self.local_participant
        return self._remote_participants.get(identity)

    def _apply(self, event: room_pb2.RoomEvent, which: str, payload: bytes | None) -> ev.RoomEvent | None:
        """Update the room's state from one native event; return its typed event, if any."""
        msg: Any = getattr(event, which)
        if which == "participant_connected":
            joined = RemoteParticipant(msg.info)
            self._own(joined._handle)
            previous = self._remote_participants.get(joined.identity)
            if previous is not None:
                self._drop_participant(previous)
            self._remote_participants[joined.identity] = joined
            return ev.ParticipantConnected(joined)
        if which == "track_published":
            remote_publication = RemoteTrackPublication(msg.publication)
            self._own(remote_publication._handle)
            remote = self._remote_participants.get(msg.participant_identity)
            if remote is None:
                remote_publication._handle.release()
                return None
            remote.track_publications[remote_publication.sid] = remote_publication
            return ev.TrackPublished(remote_publication, remote)
        if which == "track_subscribed":
            track_class = RemoteVideoTrack if msg.track.info.kind == track_pb2.KIND_VIDEO else RemoteAudioTrack
            track = track_class(msg.track)
            self._own(track._handle)  # released when the room closes (the native side expects that)
            remote = self._remote_participants.get(msg.participant_identity)
            found = remote.track_publications.get(track.sid) if remote is not None else None
            if remote is None or found is None:
                track.close()
                return None
            if found.track is not None:
                found.track.close()
            found.track = track
            return ev.TrackSubscribed(track, found, remote)
        if which == "local_track_republished":
            self.local_participant._republished(msg)
            return ev.OtherRoomEvent(which, msg)
        if which == "participant_disconnected":
            remote = self._remote_participants.pop(msg.participant_identity, None)
            if remote is None:
                return None
            remote.disconnect_reason = msg.disconnect_reason
            self._drop_participant(remote)
            return ev.ParticipantDisconnected(remote, ev.DisconnectReason.of(msg.disconnect_reason))
        if which == "participant_active":
            remote = self._remote_participants.get(msg.participant_identity)
            return ev.ParticipantActive(remote) if remote is not None else None
        if which == "local_track_published":
            local_publication = self.local_participant._published_natively(msg.track_sid)
            return ev.LocalTrackPublished(local_publication) if local_publication is not None else None
        if which == "local_track_unpublished":
            gone = self.local_participant._unpublished_natively(msg.publication_sid)
            return ev.LocalTrackUnpublished(gone) if gone is not None else None
        if which == "local_track_subscribed":
            local_publication = self.local_participant.track_publications.get(msg.track_sid)
            return ev.LocalTrackSubscribed(local_publication) if local_publication is not None else None
        if which in ("track_unpublished", "track_unsubscribed"):
            sid = msg.publication_sid if which == "track_unpublished" else msg.track_sid
            remote = self._remote_participants.get(msg.participant_identity)
            if remote is None:
                return None
            found = (remote.track_publications.pop(sid, None) if which == "track_unpublished"
                     else remote.track_publications.get(sid))
            if found is None:
                return None
            ended = found.track
            if ended is not None:
                ended.close()
            if which == "track_unpublished":
                found._handle.release()
                return ev.TrackUnpublished(found, remote)
            found.track = None
            return ev.TrackUnsubscribed(ended, found, remote) if ended is not None else None
        if which == "track_subscription_failed":
            remote = self._remote_participants.get(msg.participant_identity)
            return ev.TrackSubscriptionFailed(remote, msg.track_sid, msg.error) if remote else None
        if which in ("track_muted", "track_unmuted"):
            who = self._participant(msg.participant_identity)
            if who is None:
                return None
            muted = which == "track_muted"
            publication = who.track_publications.get(msg.track_sid)
            if publication is not None:
                publication.muted = muted
                track_of = getattr(publication, "track", None)
                if track_of is not None:
                    track_of.muted = muted
            return ev.TrackMuted(who, msg.track_sid) if muted else ev.TrackUnmuted(who, msg.track_sid)
        if which == "active_speakers_changed":
            speakers = (self._participant(i) for i in msg.participant_identities)
            return ev.ActiveSpeakersChanged(tuple(p for p in speakers if p is not None))
        if which == "room_metadata_changed":
            self.metadata = msg.metadata
            return ev.RoomMetadataChanged(msg.metadata)
        if which == "room_sid_changed":
            self.sid = msg.sid
            return ev.RoomSidChanged(msg.sid)
        if which in ("participant_metadata_changed", "participant_name_changed",
                     "participant_attributes_changed", "connection_quality_changed"):
            who = self._participant(msg.participant_identity)
            if who is None:
                return None
            if which == "participant_metadata_changed":
                who.metadata = msg.metadata
                return ev.ParticipantMetadataChanged(who, msg.metadata)
            if which == "participant_name_changed":
                who.name = msg.name
                return ev.ParticipantNameChanged(who, msg.name)
            if which == "participant_attributes_changed":
                who.attributes = {entry.key: entry.value for entry in msg.attributes}
                changed = {entry.key: entry.value for entry in msg.changed_attributes}
                return ev.ParticipantAttributesChanged(who, changed)
            return ev.ConnectionQualityChanged(who, ev.ConnectionQuality(msg.quality))
        if which == "connection_state_changed":
            self.connection_state = ev.ConnectionState(msg.state)
            return ev.ConnectionStateChanged(self.connection_state)
        if which == "reconnecting":
            self.connection_state = ev.ConnectionState.RECONNECTING
            return ev.Reconnecting()
        if which == "reconnected":
            self.connection_state = ev.ConnectionState.CONNECTED
            return ev.Reconnected()
        if which == "disconnected":
            reason = ev.DisconnectReason.of(msg.reason)
            self._connection_lost(reason)
            return ev.Disconnected(reason)
        if which == "data_packet_received" and payload is not None:
            identity = msg.participant_identity
            return ev.DataReceived(payload, msg.user.topic, identity,
                                   self._remote_participants.get(identity),
                                   msg.kind == room_pb2.KIND_RELIABLE)
        return ev.OtherRoomEvent(which, msg)

    # -- state changes that release or end things ------------------------------------------
    def _drop_participant(self, remote: RemoteParticipant) -> None:
        """``remote`` left: its tracks and streams end, its publications are released."""
        for publication in remote.track_publications.values():
            if publication.track is not None:
                publication.track.close()
            publication._handle.release()
        remote._leave()

    def _announce_local(self, publication: LocalTrackPublication) -> None:
        self._emit(ev.LocalTrackPublished(publication))

    def _connection_lost(self, reason: ev.DisconnectReason) -> None:
        """The room is disconnected: every remote track and participant stream ends."""
        self.connection_state = ev.ConnectionState.DISCONNECTED
        if self.disconnect_reason is None:
            self.disconnect_reason = reason
        for remote in self._remote_participants.values():
            for publication in remote.track_publications.values():
                if publication.track is not None:
                    publication.track.close()
            remote._go()

    # -- closing ----------------------------------------------------------------------------
    async def _disconnect(self) -> None:
        """Ask the native room to disconnect and wait (bounded) until it has."""
        req = ffi_pb2.FfiRequest()
        req.disconnect.room_handle = self._handle.id
        req.disconnect.reason = participant_pb2.CLIENT_INITIATED
        with trio.move_on_after(DISCONNECT_TIMEOUT):
            try:
                await _native.request_async(req, "disconnect")
            except RtcError:
                return
            with trio.move_on_after(1.0):  # let the pump apply what came before the end
                await self._eos.wait()

    def _close(self) -> None:
        """Release everything the room holds; end its iterators and streams."""
        if self._link.closed:
            return
        self._link.closed = True
        self._sub.close()
        if self.connection_state != ev.ConnectionState.DISCONNECTED or self.disconnect_reason is None:
            self._connection_lost(ev.DisconnectReason.CLIENT_INITIATED)
        self._end_iterators()
        for remote in self._remote_participants.values():
            for publication in remote.track_publications.values():
                publication.track = None
        self.local_participant._close()
        for handle in self._owned:
            handle.release()
        self._owned.clear()


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"timeout must be positive and finite, got {timeout}")
    return float(timeout)


@asynccontextmanager
async def connect(
    url: str,
    token: str,
    *,
    auto_subscribe: bool = True,
    adaptive_stream: bool = False,
    dynacast: bool = False,
    timeout: float = 20.0,
) -> AsyncIterator[Room]:
    """Join the room ``token`` grants on the LiveKit server at ``url`` (``ws://`` or ``wss://``).

    Yields a :class:`Room` kept current from the server's events. Leaving the block
    disconnects and releases everything (also on error and cancellation). A connect that
    fails, or takes longer than ``timeout`` seconds, raises :class:`ConnectError`.
    """
    for name, value in (("url", url), ("token", token)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not url.startswith(("ws://", "wss://", "http://", "https://")):
        raise ValueError(f"url must start with ws://, wss://, http:// or https://, got {url!r}")
    if not token:
        raise ValueError("token must not be empty")
    for name, flag in (("auto_subscribe", auto_subscribe), ("adaptive_stream", adaptive_stream),
                       ("dynacast", dynacast)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
    seconds = _check_timeout(timeout)
    await trio.lowlevel.checkpoint()
    req = ffi_pb2.FfiRequest()
    req.connect.url = url
    req.connect.token = token
    options = req.connect.options
    options.auto_subscribe = auto_subscribe
    options.adaptive_stream = adaptive_stream
    options.dynacast = dynacast
    options.connect_timeout_ms = max(1, int(seconds * 1000))
    callback = await _request_connect(req, url, seconds)
    try:
        room = Room(callback.result)  # no checkpoint between the callback and the room owning its handles
    except BaseException:
        _abandon(callback)
        raise
    try:
        async with trio.open_nursery() as nursery:
            room._link.nursery = nursery
            nursery.start_soon(room._pump)
            try:
                ready = ffi_pb2.FfiRequest()
                ready.ready_for_room_event.room_handle = room._handle.id
                _native.request(ready)
                yield room
            finally:
                with trio.CancelScope(shield=True):
                    await room._disconnect()
                room._link.nursery = None
                room._pump_scope.cancel()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) != 1:
            raise
        _reraise(group.exceptions[0])  # the body's own exception, as the body raised it
    finally:
        room._close()


def _reraise(error: BaseException) -> NoReturn:
    """Raise ``error`` out of an ``except`` block without making that block's exception its
    ``__context__``: it keeps the context and traceback it was raised with (a nursery's
    group holding it would otherwise become its context: a reference cycle)."""
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context
        del error, context
