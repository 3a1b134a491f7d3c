"""Participants, as a room sees them; the local one publishes tracks and data.

The local participant reaches its room only through the :class:`RoomLink` the room gives it.
"""

from __future__ import annotations

import ctypes
import logging
import os
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, AsyncContextManager, Callable, Mapping, Sequence

import trio

from rtc_trio import _data_streams, _handles, _native, _router, _validate
from rtc_trio._errors import RtcError
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2, participant_pb2, room_pb2
from rtc_trio._publications import (
    LocalTrackPublication, RemoteTrackPublication, TrackPublication, TrackPublishOptions,
)
from rtc_trio._stream_follow import FollowableParticipant
from rtc_trio._rpc import RpcEndpoint, RpcHandler, TranscriptionSegment
from rtc_trio._track import LocalAudioTrack, LocalVideoTrack

logger = logging.getLogger("rtc_trio")

MAX_DATA_PAYLOAD = 15 * 1024
"""Largest ``publish_data`` payload, in bytes: LiveKit's documented limit for a data packet's
user data (16 KiB per packet, less its routing headers), the size every client platform
accepts. The native library here refuses a packet only beyond the message size the data
channel negotiated (64000 bytes with livekit-server 1.13), after a 3 s wait."""


class Participant:
    """Someone in the room: identity, name, metadata, attributes and publications by sid."""

    def __init__(self, owned: participant_pb2.OwnedParticipant) -> None:
        self._handle = NativeHandle(owned.handle.id)
        self.track_publications: dict[str, TrackPublication] = {}
        self.disconnect_reason = 0
        self._update(owned.info)

    def _update(self, info: participant_pb2.ParticipantInfo) -> None:
        self.sid: str = info.sid
        self.identity: str = info.identity
        self.name: str = info.name
        self.metadata: str = info.metadata
        self.attributes: dict[str, str] = dict(info.attributes)
        self.kind: int = info.kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r}, sid={self.sid!r})"


class RemoteParticipant(Participant, FollowableParticipant):
    """Another participant; open its media with ``open_audio_stream(participant=...)``, a
    stream that follows their identity (also when they come back as a new object)."""

    track_publications: dict[str, RemoteTrackPublication]  # type: ignore[assignment]

    def __init__(self, owned: participant_pb2.OwnedParticipant) -> None:
        Participant.__init__(self, owned)
        FollowableParticipant.__init__(self)

    @property
    def connected(self) -> bool:
        """False once the room applied the participant's departure (or closed)."""
        return not self._gone

    def _leave(self, reconnecting: bool = False) -> bool:
        """The participant left: its handle goes now or with the room. True if streams
        wait for them to come back (see ``open_audio_stream``'s ``rejoin_grace``, which
        starts once the room is connected again if it is ``reconnecting``)."""
        waited_for = self._depart(held=reconnecting)
        if not self._streamed:
            self._handle.release()
        return waited_for


@dataclass(eq=False)
class RoomLink:
    """What a room shares with its local participant, given at construction."""

    remote_participants: Mapping[str, RemoteParticipant]
    """The room's remote participants by identity (a live, read-only view)."""
    announce: Callable[[LocalTrackPublication], None]
    """Emits LocalTrackPublished for a publication whose native event came first."""
    closed: bool = False
    nursery: trio.Nursery | None = None
    """``connect``'s nursery while its block runs: where a cancelled publish is undone."""


UNPUBLISHED_KEPT = 64
"""Publications unpublished by ``unpublish_track`` kept for their native event."""


class LocalParticipant(Participant):
    """This process in the room: publish tracks and data, set its metadata, name and attributes."""

    track_publications: dict[str, LocalTrackPublication]  # type: ignore[assignment]

    def __init__(self, owned: participant_pb2.OwnedParticipant, link: RoomLink) -> None:
        super().__init__(owned)
        self._link = link
        self._published_early: set[str] = set()  # sids published natively before their call resumed
        self._unpublished: dict[str, LocalTrackPublication] = {}  # by sid, oldest first
        self._rpc = RpcEndpoint(self._handle.id, lambda: link.closed, link.remote_participants,
                                lambda: link.nursery)

    def _check_open(self) -> None:
        if self._link.closed:
            raise trio.ClosedResourceError("the room is closed")

    async def publish_track(
        self, track: LocalAudioTrack | LocalVideoTrack, options: TrackPublishOptions | None = None
    ) -> LocalTrackPublication:
        """Publish a local track to the room; returns its publication once the server has it.

        Cancelled while waiting, the track ends up not published: the room unpublishes it
        as soon as the native side reports it published.
        """
        if not isinstance(track, (LocalAudioTrack, LocalVideoTrack)):
            raise TypeError(f"publish_track takes a local track, not {type(track).__name__}")
        if options is None:
            options = TrackPublishOptions()
        elif not isinstance(options, TrackPublishOptions):
            raise TypeError(f"options must be TrackPublishOptions, not {type(options).__name__}")
        self._check_open()
        track._check_open()
        req = ffi_pb2.FfiRequest()
        req.publish_track.local_participant_handle = self._handle.id
        req.publish_track.track_handle = track._handle.id
        options._to_proto(req.publish_track.options)
        callback = await self._publish(req)  # cancelled, it leaves nothing published
        if callback.WhichOneof("message") == "error":
            raise RtcError(f"publish_track failed: {callback.error}")
        publication = LocalTrackPublication(callback.publication, track)
        if self._link.closed:  # the room closed while we waited: it will not release it
            publication._handle.release()
            raise trio.ClosedResourceError("the room closed while publishing")
        track.sid = publication.sid
        self._add_publication(publication)
        return publication

    async def unpublish_track(self, publication: LocalTrackPublication | str) -> None:
        """Stop publishing a track (by publication or sid); the local track stays usable."""
        sid = publication.sid if isinstance(publication, LocalTrackPublication) else publication
        if not isinstance(sid, str):
            raise TypeError(f"unpublish_track takes a publication or a sid, not {type(sid).__name__}")
        if sid not in self.track_publications:
            raise ValueError(f"no local publication with sid {sid!r}")
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.unpublish_track.local_participant_handle = self._handle.id
        req.unpublish_track.track_sid = sid
        req.unpublish_track.stop_on_unpublish = False
        callback = await _native.request_async(req, "unpublish_track")
        if callback.HasField("error"):
            raise RtcError(f"unpublish_track failed: {callback.error}")
        self._drop_publication(sid)

    async def publish_data(
        self,
        payload: bytes | bytearray | memoryview | str,
        *,
        reliable: bool = True,
        topic: str | None = None,
        destination_identities: Sequence[str] | None = None,
    ) -> None:
        """Send ``payload`` to everyone in the room, or to ``destination_identities`` only.

        A ``str`` is sent as UTF-8. At most :data:`MAX_DATA_PAYLOAD` bytes (15 KiB): a larger
        payload is a ValueError. Naming an identity that is not in the room is a ValueError.
        """
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise TypeError(f"payload must be bytes or str, not {type(payload).__name__}")
        size = memoryview(payload).nbytes
        if size > MAX_DATA_PAYLOAD:
            raise ValueError(f"payload is {size} bytes; at most {MAX_DATA_PAYLOAD} bytes fit in a data packet")
        reliable = _validate.boolean("reliable", reliable)
        if topic is not None:
            topic = _validate.string("topic", topic)
        destinations: list[str] = []
        if destination_identities is not None:
            destinations = _validate.strings("destination_identities", destination_identities)
        self._check_open()
        unknown = [i for i in destinations if i not in self._link.remote_participants]
        if unknown:
            raise ValueError(f"no participant with identity {', '.join(map(repr, unknown))} in the room")
        data = bytes(payload)
        buffer = ctypes.create_string_buffer(data, len(data)) if data else None
        req = ffi_pb2.FfiRequest()
        publish = req.publish_data
        publish.local_participant_handle = self._handle.id
        publish.data_ptr = ctypes.addressof(buffer) if buffer is not None else 0
        publish.data_len = len(data)
        publish.reliable = reliable
        if topic is not None:
            publish.topic = topic
        publish.destination_identities.extend(destinations)
        callback = await _native.request_async(req, "publish_data")  # the payload is copied
        del buffer
        if callback.HasField("error"):
            raise RtcError(f"publish_data failed: {callback.error}")

    async def set_metadata(self, metadata: str) -> None:
        """Replace this participant's metadata (everyone gets a metadata-changed event)."""
        metadata = _validate.string("metadata", metadata)
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.set_local_metadata.local_participant_handle = self._handle.id
        req.set_local_metadata.metadata = metadata
        await self._settle(req, "set_local_metadata")
        self.metadata = metadata

    async def set_name(self, name: str) -> None:
        """Replace this participant's display name."""
        name = _validate.string("name", name)
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.set_local_name.local_participant_handle = self._handle.id
        req.set_local_name.name = name
        await self._settle(req, "set_local_name")
        self.name = name

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        """Set attributes (merged into the existing ones; an empty value removes a key)."""
        attributes = _validate.string_mapping("attributes", attributes)
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.set_local_attributes.local_participant_handle = self._handle.id
        for key, value in attributes.items():
            entry = req.set_local_attributes.attributes.add()
            entry.key, entry.value = key, value
        await self._settle(req, "set_local_attributes")
        for key, value in attributes.items():
            if value:
                self.attributes[key] = value
            else:
                self.attributes.pop(key, None)

    async def _settle(self, req: ffi_pb2.FfiRequest, name: str) -> None:
        callback = await _native.request_async(req, name)
        if callback.HasField("error"):
            raise RtcError(f"{name} failed: {callback.error}")

    # -- publishing, and undoing a cancelled publish ---------------------------------------
    async def _publish(self, req: ffi_pb2.FfiRequest) -> room_pb2.PublishTrackCallback:
        """Send ``req`` (a PublishTrackRequest) and return its reply.

        Cancelled after the request went out, the track would still be published once the
        native side completes: the reply is handed to a task of the room's nursery, which
        unpublishes the track when it comes. A cancelled publish ends with nothing published.
        """
        reply: _router.Subscription[room_pb2.PublishTrackCallback] = \
            _native.send_expecting_reply(req, "publish_track")
        try:
            callback = await reply.receive()
        except BaseException:
            self._unpublish_when_published(reply)
            raise
        reply.close()
        return callback

    def _unpublish_when_published(self, reply: _router.Subscription[room_pb2.PublishTrackCallback]) -> None:
        if self._link.nursery is None:  # the block is over: its disconnect unpublished everything
            reply.close()  # a late reply's handle is released on arrival
            return
        self._link.nursery.start_soon(self._unpublish_late, reply)

    async def _unpublish_late(self, reply: _router.Subscription[room_pb2.PublishTrackCallback]) -> None:
        """Wait for the reply of a cancelled publish; unpublish what it published."""
        try:
            callback = await reply.receive()
        except RtcError:  # the native library failed: nothing was published that can be undone
            return
        finally:
            reply.close()
        if callback.WhichOneof("message") != "publication":
            return
        owned = callback.publication  # its handle is ours (recorded by the native side)
        try:
            req = ffi_pb2.FfiRequest()
            req.unpublish_track.local_participant_handle = self._handle.id
            req.unpublish_track.track_sid = owned.info.sid
            req.unpublish_track.stop_on_unpublish = False
            result = await _native.request_async(req, "unpublish_track")
            if result.HasField("error"):
                logger.warning("rtc_trio could not unpublish %s after its publish_track was "
                               "cancelled: %s", owned.info.sid, result.error)
            else:
                logger.debug("unpublished track %r (%s): its publish_track was cancelled",
                             owned.info.name, owned.info.sid)
        except RtcError as error:
            logger.warning("rtc_trio could not unpublish %s after its publish_track was "
                           "cancelled: %s", owned.info.sid, error)
        finally:
            _handles.release(owned.handle.id)
            self._published_early.discard(owned.info.sid)

    # -- publication bookkeeping: publish_track and the room's events ------------------------
    def _add_publication(self, publication: LocalTrackPublication) -> None:
        self.track_publications[publication.sid] = publication
        if publication.sid in self._published_early:
            self._published_early.discard(publication.sid)
            self._link.announce(publication)

    def _drop_publication(self, sid: str) -> None:
        publication = self.track_publications.pop(sid, None)
        if publication is not None:
            publication._handle.release()
            self._unpublished[sid] = publication
            while len(self._unpublished) > UNPUBLISHED_KEPT:
                self._unpublished.pop(next(iter(self._unpublished)))

    def _published_natively(self, sid: str) -> LocalTrackPublication | None:
        """The room saw ``sid`` published: its publication, or None while its
        ``publish_track`` has not resumed (it is announced when it does)."""
        publication = self.track_publications.get(sid)
        if publication is None:
            self._published_early.add(sid)
        return publication

    def _unpublished_natively(self, sid: str) -> LocalTrackPublication | None:
        """The room saw ``sid`` unpublished: the publication that went, if known."""
        self._published_early.discard(sid)
        self._drop_publication(sid)
        return self._unpublished.pop(sid, None)

    def _republished(self, msg: Any) -> None:
        """The native side re-published a track (after a reconnection) under a new sid/handle."""
        publication = self.track_publications.pop(msg.previous_sid, None)
        if publication is None:
            _handles.release(msg.publication_handle)
            return
        if publication._handle.id != msg.publication_handle:
            publication._handle.release()
            publication._handle = NativeHandle(msg.publication_handle)
        publication._update(msg.info)
        self.track_publications[publication.sid] = publication
        if publication.track is not None:
            publication.track.sid = publication.sid

    def _disconnected(self) -> None:
        """The room disconnected: RPC handlers still running are cancelled."""
        self._rpc.room_ended()

    def _close(self) -> None:
        """The room closed: every publication's handle goes."""
        for publication in self.track_publications.values():
            publication._handle.release()

    # -- data streams (rtc_trio._data_streams) ----------------------------------------------
    def _sender(self) -> _data_streams.Sender:
        return _data_streams.Sender(self._handle.id, self.identity, self._link)

    async def send_text(
        self,
        text: str,
        *,
        topic: str = "",
        destination_identities: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> _data_streams.TextStreamInfo:
        """Send ``text`` as one text stream, of any size, to everyone in the room or to
        ``destination_identities``; returns its header once it is sent.

        Naming an identity that is not in the room is a ValueError; a closed room raises
        ``trio.ClosedResourceError``; a native failure :class:`StreamError`.
        """
        return await _data_streams.send_text(
            self._sender(), text, topic=topic, destination_identities=destination_identities,
            attributes=attributes)

    async def send_bytes(
        self,
        data: bytes | bytearray | memoryview,
        *,
        topic: str = "",
        name: str = "",
        mime_type: str = _data_streams.DEFAULT_MIME_TYPE,
        destination_identities: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> _data_streams.ByteStreamInfo:
        """Send ``data`` as one byte stream, of any size (see :meth:`send_text`)."""
        return await _data_streams.send_bytes(
            self._sender(), data, topic=topic, name=name, mime_type=mime_type,
            destination_identities=destination_identities, attributes=attributes)

    async def send_file(
        self,
        path: str | os.PathLike[str],
        *,
        topic: str = "",
        name: str | None = None,
        mime_type: str | None = None,
        destination_identities: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> _data_streams.ByteStreamInfo:
        """Send the file at ``path`` as a byte stream named after it (``name``), its MIME type
        guessed from its name unless given.

        The file is checked in a worker thread (a missing or unreadable one raises the
        ``OSError`` opening it raises) and read by the native library on its own threads.
        """
        return await _data_streams.send_file(
            self._sender(), path, topic=topic, name=name, mime_type=mime_type,
            destination_identities=destination_identities, attributes=attributes)

    def stream_text(
        self,
        *,
        topic: str = "",
        destination_identities: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> AbstractAsyncContextManager[_data_streams.TextStreamWriter]:
        """Open a text stream for the length of an ``async with`` block, which yields its
        writer: ``await writer.write(text)``.

        The block ending normally closes the stream; ending by an exception or a cancellation
        closes it with an error that its receivers see as a :class:`StreamError`. Arguments
        are checked at the call (as in :meth:`send_text`).
        """
        return _data_streams.stream_text(
            self._sender(), topic=topic, destination_identities=destination_identities,
            attributes=attributes)

    def stream_bytes(
        self,
        *,
        topic: str = "",
        name: str = "",
        mime_type: str = _data_streams.DEFAULT_MIME_TYPE,
        total_size: int | None = None,
        destination_identities: Sequence[str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> AbstractAsyncContextManager[_data_streams.ByteStreamWriter]:
        """:meth:`stream_text` for bytes: ``await writer.write(data)``. ``total_size``, if
        given, is announced to the receivers (``info.total_size``)."""
        return _data_streams.stream_bytes(
            self._sender(), topic=topic, name=name, mime_type=mime_type, total_size=total_size,
            destination_identities=destination_identities, attributes=attributes)

    # -- RPC, DTMF and transcriptions (rtc_trio._rpc) -----------------------------------------
    async def perform_rpc(self, *, destination_identity: str, method: str, payload: str,
                          response_timeout: float = 10.0) -> str:
        """Call ``method`` on the participant ``destination_identity``; its answer.

        Raises :class:`RpcError` with the callee's code and message, or RESPONSE_TIMEOUT once
        ``response_timeout`` seconds passed (any positive value up to an hour; the wait is a
        trio cancel scope, so a short one is safe). Cancelled, the call is abandoned: its late
        answer is dropped. The payload is at most 15 KiB of UTF-8 (:data:`MAX_RPC_PAYLOAD`).
        """
        return await self._rpc.perform(destination_identity, method, payload, response_timeout)

    def serve_rpc(self, handlers: Mapping[str, RpcHandler]) -> AsyncContextManager[None]:
        """Serve RPC methods for the lifetime of an ``async with`` block.

        ``handlers`` maps method names to async functions taking an :class:`RpcInvocation`
        and returning a ``str`` (or None, an empty answer). Each call runs as a task of a
        nursery the block owns, cancelled at the caller's response deadline (the caller gets
        RESPONSE_TIMEOUT). A handler raising :class:`RpcError` sends its code and message to
        the caller; any other exception is logged and sent as APPLICATION_ERROR. Handlers
        still running when the block ends are cancelled and their callers get
        APPLICATION_ERROR; the methods are unregistered. A method is served by one block at
        a time.
        """
        return self._rpc.serve(handlers)

    async def publish_dtmf(self, *, code: int, digit: str | None = None) -> None:
        """Send a SIP DTMF tone: ``code`` 0-15 (RFC 4733: 0-9, ``*`` 10, ``#`` 11, A-D 12-15);
        ``digit``, its character, is derived from the code when not given and must match it
        when given (ValueError). Others receive a :class:`SipDtmfReceived`."""
        await self._rpc.publish_dtmf(code, digit)

    async def publish_transcription(self, *, track_sid: str, segments: Sequence[TranscriptionSegment],
                                    participant_identity: str | None = None) -> None:
        """Publish a transcription of the track ``track_sid`` of ``participant_identity``
        (default: this participant; otherwise one in the room, or ValueError). Others
        receive a :class:`TranscriptionReceived`."""
        identity = self.identity if participant_identity is None else participant_identity
        await self._rpc.publish_transcription(identity, track_sid, segments, self.identity)

