"""Participants and their track publications, as a room sees them."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import trio

from rtc_trio import _native
from rtc_trio._errors import RtcError
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2, participant_pb2, room_pb2, track_pb2
from rtc_trio._stream_follow import FollowableParticipant
from rtc_trio._track import LocalAudioTrack, LocalVideoTrack, RemoteTrack, Track, TrackKind, TrackSource

if TYPE_CHECKING:
    from rtc_trio._room import Room

MAX_DATA_PAYLOAD = 15 * 1024
"""Largest ``publish_data`` payload, in bytes: LiveKit's documented limit for a data packet's
user data (16 KiB per packet, less its routing headers), the size every client platform
accepts. The native library here refuses a packet only beyond the message size the data
channel negotiated (64000 bytes with livekit-server 1.13), after a 3 s wait."""


@dataclass(frozen=True)
class TrackPublishOptions:
    """How a local track is published. ``None`` leaves a setting to the native default."""

    source: TrackSource = TrackSource.UNKNOWN
    stream: str | None = None
    dtx: bool | None = None
    red: bool | None = None
    simulcast: bool | None = None
    audio_max_bitrate: int | None = None
    video_max_bitrate: int | None = None
    video_max_framerate: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.source, TrackSource):
            raise TypeError(f"source must be a TrackSource, not {type(self.source).__name__}")
        if self.stream is not None and not isinstance(self.stream, str):
            raise TypeError("stream must be a str or None")
        for name in ("dtx", "red", "simulcast"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"{name} must be a bool or None")
        for name in ("audio_max_bitrate", "video_max_bitrate"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None")
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        fps = self.video_max_framerate
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))):
            raise TypeError("video_max_framerate must be a number or None")
        if fps is not None and not fps > 0:
            raise ValueError(f"video_max_framerate must be positive, got {fps}")

    def _to_proto(self, out: room_pb2.TrackPublishOptions) -> None:
        out.source = int(self.source)  # type: ignore[assignment]
        if self.stream is not None:
            out.stream = self.stream
        if self.dtx is not None:
            out.dtx = self.dtx
        if self.red is not None:
            out.red = self.red
        if self.simulcast is not None:
            out.simulcast = self.simulcast
        if self.audio_max_bitrate is not None:
            out.audio_encoding.max_bitrate = self.audio_max_bitrate
        if self.video_max_bitrate is not None:
            out.video_encoding.max_bitrate = self.video_max_bitrate
        if self.video_max_framerate is not None:
            out.video_encoding.max_framerate = float(self.video_max_framerate)


class TrackPublication:
    """A track as published in the room: its sid, kind, source, and mute state."""

    def __init__(self, owned: track_pb2.OwnedTrackPublication) -> None:
        self._handle = NativeHandle(owned.handle.id)
        self._update(owned.info)

    def _update(self, info: track_pb2.TrackPublicationInfo) -> None:
        self.sid: str = info.sid
        self.name: str = info.name
        self.kind = TrackKind(info.kind)
        self.source = TrackSource(info.source)
        self.muted: bool = info.muted
        self.mime_type: str = info.mime_type
        self.simulcasted: bool = info.simulcasted
        self.width: int = info.width
        self.height: int = info.height

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, sid={self.sid!r}, {self.kind.name.lower()})"


class LocalTrackPublication(TrackPublication):
    """A track this process publishes; ``track`` is the local track it sends."""

    def __init__(self, owned: track_pb2.OwnedTrackPublication, track: Track) -> None:
        super().__init__(owned)
        self.track: Track | None = track


class RemoteTrackPublication(TrackPublication):
    """A track another participant publishes; ``track`` is set while subscribed."""

    def __init__(self, owned: track_pb2.OwnedTrackPublication) -> None:
        super().__init__(owned)
        self.track: RemoteTrack | None = None

    @property
    def subscribed(self) -> bool:
        return self.track is not None and not self.track.closed

    def set_subscribed(self, subscribed: bool) -> None:
        """Ask the server to (un)subscribe this track (for rooms joined with auto_subscribe=False)."""
        if not isinstance(subscribed, bool):
            raise TypeError(f"subscribed must be a bool, not {type(subscribed).__name__}")
        if self._handle.released:
            raise trio.ClosedResourceError(f"publication {self.sid!r} is gone")
        req = ffi_pb2.FfiRequest()
        req.set_subscribed.subscribe = subscribed
        req.set_subscribed.publication_handle = self._handle.id
        _native.request(req)


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
    """Another participant; open its media with ``open_audio_stream(participant=...)``."""

    track_publications: dict[str, RemoteTrackPublication]  # type: ignore[assignment]

    def __init__(self, owned: participant_pb2.OwnedParticipant) -> None:
        Participant.__init__(self, owned)
        FollowableParticipant.__init__(self)

    @property
    def connected(self) -> bool:
        """False once the room applied the participant's departure (or closed)."""
        return not self._gone

    def _leave(self) -> None:
        """The participant left: its streams end; its handle goes now or with the room."""
        self._go()
        if not self._streamed:
            self._handle.release()


class LocalParticipant(Participant):
    """This process in the room: publish tracks and data, set its metadata, name and attributes."""

    track_publications: dict[str, LocalTrackPublication]  # type: ignore[assignment]

    def __init__(self, owned: participant_pb2.OwnedParticipant, room: Room) -> None:
        super().__init__(owned)
        self._room = room

    def _check_open(self) -> None:
        if self._room._closed:
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
        callback = await self._room._publish(req)  # cancelled, it leaves nothing published
        if callback.WhichOneof("message") == "error":
            raise RtcError(f"publish_track failed: {callback.error}")
        publication = LocalTrackPublication(callback.publication, track)
        if self._room._closed:  # the room closed while we waited: it will not release it
            publication._handle.release()
            raise trio.ClosedResourceError("the room closed while publishing")
        track.sid = publication.sid
        self._room._add_local_publication(publication)
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
        self._room._drop_local_publication(sid)

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
        if not isinstance(reliable, bool):
            raise TypeError(f"reliable must be a bool, not {type(reliable).__name__}")
        if topic is not None and not isinstance(topic, str):
            raise TypeError(f"topic must be a str or None, not {type(topic).__name__}")
        destinations: list[str] = []
        if destination_identities is not None:
            if isinstance(destination_identities, str) or not all(
                isinstance(identity, str) for identity in destination_identities
            ):
                raise TypeError("destination_identities must be a sequence of str")
            destinations = list(destination_identities)
        self._check_open()
        unknown = [i for i in destinations if i not in self._room._remote_participants]
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
        if not isinstance(metadata, str):
            raise TypeError(f"metadata must be a str, not {type(metadata).__name__}")
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.set_local_metadata.local_participant_handle = self._handle.id
        req.set_local_metadata.metadata = metadata
        await self._settle(req, "set_local_metadata")
        self.metadata = metadata

    async def set_name(self, name: str) -> None:
        """Replace this participant's display name."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.set_local_name.local_participant_handle = self._handle.id
        req.set_local_name.name = name
        await self._settle(req, "set_local_name")
        self.name = name

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        """Set attributes (merged into the existing ones; an empty value removes a key)."""
        if not isinstance(attributes, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise TypeError("attributes must be a mapping of str to str")
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
