"""Rooms: ``async with rtc_trio.connect(url, token) as room`` and the state kept from its events.

How events flow: the native side (:mod:`rtc_trio._room_native`) hands each room event, with
the one native handle it may carry already recorded as ours, to the room's route in the router.
A task in a nursery owned by ``connect`` drains that route, updates the room's state and fans
typed events out to the bounded channels opened with :meth:`Room.events`. Nothing outlives
the ``async with`` block.

A connect the caller stops waiting for (cancelled, timed out) may still create its room
natively: its late reply is handed to the caller's trio run, which disconnects that room; its
handles are released once it is disconnected (see :func:`_finish_late_connect`).
"""

from __future__ import annotations

import functools
import logging
import weakref
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import MappingProxyType
from typing import Any, AsyncIterator, Callable, Mapping, NoReturn

import trio

from rtc_trio import _data_streams, _native, _room_native, _router, _validate
from rtc_trio import _room_events as ev
from rtc_trio._errors import ConnectError, RtcError
from rtc_trio._handles import NativeHandle
from rtc_trio._participant import LocalParticipant, Participant, RemoteParticipant, RoomLink
from rtc_trio._publications import LocalTrackPublication, RemoteTrackPublication
from rtc_trio._proto import ffi_pb2, participant_pb2, room_pb2, track_pb2
from rtc_trio._room_native import Handoff
from rtc_trio._rpc import TranscriptionSegment
from rtc_trio._stats import SessionStats, stats_report
from rtc_trio._track import RemoteAudioTrack, RemoteVideoTrack

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


# -- connecting, and finishing a connect whose caller left ----------------------------------

async def _request_connect(req: ffi_pb2.FfiRequest, url: str, timeout: float) -> room_pb2.ConnectCallback:
    """Send ``req`` (a ConnectRequest); its successful callback, whose handles are ours now.

    Waits at most ``timeout`` seconds; a callback that comes later is finished in this trio run.
    """
    async_id = _native.next_async_id()
    req.connect.request_async_id = async_id
    wake: _router.Subscription[bool] = _router.Subscription(1)
    _room_native.expect_connect(async_id)
    _router.expect_once(async_id, wake)
    try:
        _native.request(req)
    except BaseException:
        wake.close()
        _room_native.withdraw_connect(async_id, None)
        raise
    try:
        with trio.move_on_after(timeout):
            await wake.receive()
    except BaseException:
        late = _stop_waiting(async_id)
        if late is not None:  # it came just now: finish it here
            _finish_late_connect(late)
        raise
    finally:
        wake.close()
    callback = _stop_waiting(async_id)
    if callback is None:  # timed out: a late callback is finished when it comes
        raise ConnectError(f"could not connect to {url} within {timeout:g} s")
    if callback.WhichOneof("message") != "result":
        raise ConnectError(f"could not connect to {url}: {callback.error}")
    return callback


def _stop_waiting(async_id: int) -> room_pb2.ConnectCallback | None:
    """The reply of connect ``async_id`` if it came; else one that comes later is handed to
    this trio run (:func:`_finish_late_connect`)."""
    later = Handoff(trio.lowlevel.current_trio_token(), _finish_late_connect)
    return _room_native.withdraw_connect(async_id, later)


def _finish_late_connect(callback: room_pb2.ConnectCallback) -> None:
    """Disconnect the room of a connect whose caller left; its handles are released once it
    is disconnected (by the native side, when the disconnect replies).

    Runs on the thread of the caller's trio run: as a ``run_sync_soon`` callback when the
    reply came late, or from the caller itself; on the native thread only if that run has
    finished (see :class:`~rtc_trio._room_native.Handoff`). It only sends requests that
    return at once, and touches nothing of trio.
    """
    if callback.WhichOneof("message") != "result":
        return
    result = callback.result
    logger.debug("a connect to room %r completed after its caller left: disconnecting it",
                 result.room.info.name)
    disconnect_id = _native.next_async_id()
    _room_native.abandon_room(result, disconnect_id)
    try:
        req = ffi_pb2.FfiRequest()
        req.ready_for_room_event.room_handle = result.room.handle.id  # the native side waits for it
        _native.request(req)
        req = ffi_pb2.FfiRequest()
        req.disconnect.room_handle = result.room.handle.id
        req.disconnect.request_async_id = disconnect_id
        _native.request(req)
    except RtcError:
        _room_native.release_abandoned(disconnect_id)


# -- the trio side ------------------------------------------------------------------------

_Apply = Callable[["Room", Any, "bytes | None"], "ev.RoomEvent | None"]
_APPLY: dict[str, _Apply] = {}
"""By room event kind (the protocol's oneof name): the Room method that applies it. A kind
absent here is passed on as an :class:`OtherRoomEvent`."""


def _applies(kind: str) -> Callable[[_Apply], _Apply]:
    def register(apply: _Apply) -> _Apply:
        _APPLY[kind] = apply
        return apply
    return register


_ApplyTo = Callable[["Room", Participant, Any], "ev.RoomEvent | None"]


def _applies_to_participant(kind: str) -> Callable[[_ApplyTo], _ApplyTo]:
    """:func:`_applies`, for an event about the participant its ``participant_identity``
    names: applied to that participant, or not at all if the room does not know them."""
    def register(apply: _ApplyTo) -> _ApplyTo:
        def of_participant(room: Room, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
            who = room._participant(msg.participant_identity)
            return apply(room, who, msg) if who is not None else None
        _APPLY[kind] = of_participant
        return apply
    return register


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
        self._channels: weakref.WeakSet[ev.RoomEvents] = weakref.WeakSet()
        self._remote_participants: dict[str, RemoteParticipant] = {}
        self._departed: dict[str, RemoteParticipant] = {}  # by identity: who left, followed by streams
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
        """A channel of this room's events from now on (a ``trio.abc.ReceiveChannel``, iterate it
        with ``async for``); it ends when the room does.

        Call it first thing in the ``async with connect(...)`` block to see every event. It
        buffers up to ``capacity`` events (1 to 4096); a reader that falls behind loses the
        oldest, counted in its ``dropped``. The room's own state never loses an event.
        """
        capacity = _validate.integer("capacity", capacity, 1, ev.MAX_EVENT_CAPACITY)
        channel = ev.RoomEvents._open(capacity)
        if self._link.closed or self._eos.is_set():
            channel._end()
        else:
            self._channels.add(channel)
        return channel

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
                self._end_channels()
        self._eos.set()
        self._end_channels()

    def _emit(self, event: ev.RoomEvent) -> None:
        for channel in list(self._channels):
            channel._push(event)

    def _end_channels(self) -> None:
        for channel in list(self._channels):
            channel._end()
        self._channels.clear()

    def _participant(self, identity: str) -> Participant | None:
        if identity == self.local_participant.identity:
            return self.local_participant
        return self._remote_participants.get(identity)

    def _apply(self, event: room_pb2.RoomEvent, which: str, payload: bytes | None) -> ev.RoomEvent | None:
        """Update the room's state from one native event; return its typed event, if any."""
        msg: Any = getattr(event, which)
        apply = _APPLY.get(which)
        if apply is None:
            return ev.OtherRoomEvent(which, msg)
        return apply(self, msg, payload)

    # -- one function per event kind, registered in _APPLY by @_applies ----------------------
    @_applies("participant_connected")
    def _joined(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        joined = RemoteParticipant(msg.info)
        self._own(joined._handle)
        previous = self._remote_participants.get(joined.identity)
        if previous is not None:
            self._drop_participant(previous)
        self._remote_participants[joined.identity] = joined
        departed = self._departed.pop(joined.identity, None)
        if departed is not None:  # back (a rejoin, or a full reconnect): their streams follow
            joined._succeed(departed)
        return ev.ParticipantConnected(joined)

    @_applies("participant_disconnected")
    def _left(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        remote = self._remote_participants.pop(msg.participant_identity, None)
        if remote is None:
            return None
        remote.disconnect_reason = msg.disconnect_reason
        self._drop_participant(remote)
        return ev.ParticipantDisconnected(remote, ev.DisconnectReason.of(msg.disconnect_reason))

    @_applies("participant_active")
    def _active(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        remote = self._remote_participants.get(msg.participant_identity)
        return ev.ParticipantActive(remote) if remote is not None else None

    @_applies("track_published")
    def _track_published(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        publication = RemoteTrackPublication(msg.publication)
        self._own(publication._handle)
        remote = self._remote_participants.get(msg.participant_identity)
        if remote is None:
            publication._handle.release()
            return None
        remote.track_publications[publication.sid] = publication
        return ev.TrackPublished(publication, remote)

    @_applies("track_unpublished")
    def _track_unpublished(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        remote = self._remote_participants.get(msg.participant_identity)
        found = remote.track_publications.pop(msg.publication_sid, None) if remote else None
        if remote is None or found is None:
            return None
        if found.track is not None:
            found.track.close()
        found._handle.release()
        return ev.TrackUnpublished(found, remote)

    @_applies("track_subscribed")
    def _track_subscribed(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
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

    @_applies("track_unsubscribed")
    def _track_unsubscribed(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        remote = self._remote_participants.get(msg.participant_identity)
        found = remote.track_publications.get(msg.track_sid) if remote else None
        if remote is None or found is None or found.track is None:
            return None
        ended, found.track = found.track, None
        ended.close()
        return ev.TrackUnsubscribed(ended, found, remote)

    @_applies("track_subscription_failed")
    def _subscription_failed(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        remote = self._remote_participants.get(msg.participant_identity)
        return ev.TrackSubscriptionFailed(remote, msg.track_sid, msg.error) if remote else None

    @_applies_to_participant("track_muted")
    def _track_muted(self, who: Participant, msg: Any) -> ev.RoomEvent | None:
        _set_muted(who, msg.track_sid, True)
        return ev.TrackMuted(who, msg.track_sid)

    @_applies_to_participant("track_unmuted")
    def _track_unmuted(self, who: Participant, msg: Any) -> ev.RoomEvent | None:
        _set_muted(who, msg.track_sid, False)
        return ev.TrackUnmuted(who, msg.track_sid)

    @_applies("local_track_published")
    def _local_published(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        publication = self.local_participant._published_natively(msg.track_sid)
        return ev.LocalTrackPublished(publication) if publication is not None else None

    @_applies("local_track_unpublished")
    def _local_unpublished(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        gone = self.local_participant._unpublished_natively(msg.publication_sid)
        return ev.LocalTrackUnpublished(gone) if gone is not None else None

    @_applies("local_track_subscribed")
    def _local_subscribed(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        publication = self.local_participant.track_publications.get(msg.track_sid)
        return ev.LocalTrackSubscribed(publication) if publication is not None else None

    @_applies("local_track_republished")
    def _local_republished(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self.local_participant._republished(msg)
        return ev.OtherRoomEvent("local_track_republished", msg)

    @_applies("active_speakers_changed")
    def _speakers(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        speakers = (self._participant(i) for i in msg.participant_identities)
        return ev.ActiveSpeakersChanged(tuple(p for p in speakers if p is not None))

    @_applies("room_metadata_changed")
    def _room_metadata(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self.metadata = msg.metadata
        return ev.RoomMetadataChanged(msg.metadata)

    @_applies("room_sid_changed")
    def _room_sid(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self.sid = msg.sid
        return ev.RoomSidChanged(msg.sid)

    @_applies_to_participant("participant_metadata_changed")
    def _metadata(self, who: Participant, msg: Any) -> ev.RoomEvent | None:
        who.metadata = msg.metadata
        return ev.ParticipantMetadataChanged(who, msg.metadata)

    @_applies_to_participant("participant_name_changed")
    def _name(self, who: Participant, msg: Any) -> ev.RoomEvent | None:
        who.name = msg.name
        return ev.ParticipantNameChanged(who, msg.name)

    @_applies_to_participant("participant_attributes_changed")
    def _attributes(self, who: Participant, msg: Any) -> ev.RoomEvent | None:
        who.attributes = {entry.key: entry.value for entry in msg.attributes}
        changed = {entry.key: entry.value for entry in msg.changed_attributes}
        return ev.ParticipantAttributesChanged(who, changed)

    @_applies_to_participant("connection_quality_changed")
    def _quality(self, who: Participant, msg: Any) -> ev.RoomEvent | None:
        return ev.ConnectionQualityChanged(who, ev.ConnectionQuality(msg.quality))

    @_applies("connection_state_changed")
    def _connection_state(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self.connection_state = ev.ConnectionState(msg.state)
        return ev.ConnectionStateChanged(self.connection_state)

    @_applies("reconnecting")
    def _reconnecting(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self.connection_state = ev.ConnectionState.RECONNECTING
        return ev.Reconnecting()

    @_applies("reconnected")
    def _reconnected(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self.connection_state = ev.ConnectionState.CONNECTED
        for departed in self._departed.values():  # left while we could not tell: from now on
            departed._hold_over()
        return ev.Reconnected()

    @_applies("disconnected")
    def _disconnected(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        reason = ev.DisconnectReason.of(msg.reason)
        self._connection_lost(reason)
        return ev.Disconnected(reason)

    @_applies("data_packet_received")
    def _data(self, msg: Any, payload: bytes | None) -> ev.RoomEvent | None:
        if msg.WhichOneof("value") == "sip_dtmf":
            return self._sip_dtmf(msg)
        if payload is None:  # not a user packet: passed on as it came
            return ev.OtherRoomEvent("data_packet_received", msg)
        identity = msg.participant_identity
        return ev.DataReceived(payload, msg.user.topic, identity,
                               self._remote_participants.get(identity),
                               msg.kind == room_pb2.KIND_RELIABLE)

    # -- DTMF, transcriptions and session stats (rtc_trio._rpc, rtc_trio._stats) ---------------
    def _sip_dtmf(self, msg: Any) -> ev.RoomEvent:
        identity = msg.participant_identity
        return ev.SipDtmfReceived(msg.sip_dtmf.code, msg.sip_dtmf.digit, identity,
                                  self._remote_participants.get(identity))

    @_applies("transcription_received")
    def _transcription(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        who = self._participant(msg.participant_identity)
        publication = who.track_publications.get(msg.track_sid) if who is not None else None
        segments = tuple(TranscriptionSegment._from_proto(s) for s in msg.segments)
        return ev.TranscriptionReceived(segments, msg.participant_identity, who, msg.track_sid,
                                        publication)

    async def get_stats(self) -> SessionStats:
        """The WebRTC statistics of the room's two peer connections (publisher, subscriber)."""
        if self._link.closed:
            raise trio.ClosedResourceError("the room is closed")
        req = ffi_pb2.FfiRequest()
        req.get_session_stats.room_handle = self._handle.id
        callback = await _native.request_async(req, "get_session_stats")
        if callback.WhichOneof("message") != "result":
            raise RtcError(f"get_session_stats failed: {callback.error}")
        return SessionStats(stats_report(callback.result.publisher_stats),
                            stats_report(callback.result.subscriber_stats))

    # -- state changes that release or end things ------------------------------------------
    def _drop_participant(self, remote: RemoteParticipant) -> None:
        """``remote`` left: its tracks end, its publications are released; streams that
        follow the participant wait for their identity to come back."""
        for publication in remote.track_publications.values():
            if publication.track is not None:
                publication.track.close()
            publication._handle.release()
        if remote._leave(self.connection_state == ev.ConnectionState.RECONNECTING):
            self._departed = {i: p for i, p in self._departed.items() if p._followers}
            self._departed[remote.identity] = remote

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
        self._streams.room_ended("the room disconnected before the stream ended")
        for departed in self._departed.values():
            departed._go()
        self._departed.clear()
        self.local_participant._disconnected()

    # -- data streams (rtc_trio._data_streams) ----------------------------------------------
    def text_streams(
        self, topic: str = "", *, capacity: int = _data_streams.DEFAULT_CAPACITY,
        buffer_bytes: int = _data_streams.DEFAULT_BUFFER_BYTES,
    ) -> AbstractAsyncContextManager[_data_streams.IncomingStreams[_data_streams.TextStreamReader]]:
        """Receive the text streams sent on ``topic`` for the length of an ``async with`` block.

        Yields a ``trio.abc.ReceiveChannel`` of :class:`TextStreamReader`, one per stream, in
        the order they open. One block per topic at a time (another raises
        ``trio.BusyResourceError``); streams on a topic no block listens to are dropped.
        At most ``capacity`` readers wait to be taken (then the oldest is dropped, counted in
        ``dropped``); a reader buffers at most ``buffer_bytes`` of unread chunks (then its
        stream is lost: it raises :class:`StreamError`). Leaving the block closes the readers
        whose streams still run.
        """
        return self._streams.listen("text", topic, capacity, buffer_bytes, _data_streams.TextStreamReader)

    def byte_streams(
        self, topic: str = "", *, capacity: int = _data_streams.DEFAULT_CAPACITY,
        buffer_bytes: int = _data_streams.DEFAULT_BUFFER_BYTES,
    ) -> AbstractAsyncContextManager[_data_streams.IncomingStreams[_data_streams.ByteStreamReader]]:
        """:meth:`text_streams`, for byte streams (and files): readers of ``bytes`` chunks."""
        return self._streams.listen("byte", topic, capacity, buffer_bytes, _data_streams.ByteStreamReader)

    @functools.cached_property
    def _streams(self) -> _data_streams.StreamListeners:
        return _data_streams.StreamListeners(self._link)

    @_applies("text_stream_opened")
    def _text_stream_opened(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self._streams.opened("text", msg)
        return None

    @_applies("byte_stream_opened")
    def _byte_stream_opened(self, msg: Any, _: bytes | None) -> ev.RoomEvent | None:
        self._streams.opened("byte", msg)
        return None

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
        """Release everything the room holds; end its event channels and streams."""
        if self._link.closed:
            return
        self._link.closed = True
        self._sub.close()
        if self.connection_state != ev.ConnectionState.DISCONNECTED or self.disconnect_reason is None:
            self._connection_lost(ev.DisconnectReason.CLIENT_INITIATED)
        self._end_channels()
        for remote in self._remote_participants.values():
            for publication in remote.track_publications.values():
                publication.track = None
        self.local_participant._close()
        for handle in self._owned:
            handle.release()
        self._owned.clear()


def _set_muted(who: Participant, track_sid: str, muted: bool) -> None:
    publication = who.track_publications.get(track_sid)
    if publication is not None:
        publication.muted = muted
        track = getattr(publication, "track", None)
        if track is not None:
            track.muted = muted


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
    url, token = _validate.string("url", url), _validate.string("token", token)
    if not url.startswith(("ws://", "wss://", "http://", "https://")):
        raise ValueError(f"url must start with ws://, wss://, http:// or https://, got {url!r}")
    if not token:
        raise ValueError("token must not be empty")
    auto_subscribe = _validate.boolean("auto_subscribe", auto_subscribe)
    adaptive_stream = _validate.boolean("adaptive_stream", adaptive_stream)
    dynacast = _validate.boolean("dynacast", dynacast)
    seconds = _validate.number("timeout", timeout, unit=" of seconds")
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
        _finish_late_connect(callback)
        raise
    raised: list[BaseException] = []  # what the body raised, if it did
    try:
        async with trio.open_nursery() as nursery:
            room._link.nursery = nursery
            nursery.start_soon(room._pump)
            try:
                ready = ffi_pb2.FfiRequest()
                ready.ready_for_room_event.room_handle = room._handle.id
                _native.request(ready)
                try:
                    yield room
                except BaseException as error:
                    raised.append(error)
                    raise
            finally:
                with trio.CancelScope(shield=True):
                    await room._disconnect()
                room._link.nursery = None
                room._pump_scope.cancel()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if raised and len(group.exceptions) == 1:  # the nursery's wrapping of the body's own
            _reraise(raised[0])  # as the body raised it: a group of its own too (trio's
        raise                    # wrapping holds a copy of that), not unwrapped
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
