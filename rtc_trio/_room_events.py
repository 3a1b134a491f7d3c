"""Typed room events, and the bounded per-iterator buffers that deliver them."""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Union

import trio

from rtc_trio._participant import Participant, RemoteParticipant
from rtc_trio._publications import LocalTrackPublication, RemoteTrackPublication
from rtc_trio._track import RemoteTrack


class ConnectionState(enum.IntEnum):
    """The room's connection to the server (values are the protocol's)."""

    DISCONNECTED = 0
    CONNECTED = 1
    RECONNECTING = 2


class ConnectionQuality(enum.IntEnum):
    POOR = 0
    GOOD = 1
    EXCELLENT = 2
    LOST = 3


class DisconnectReason(enum.IntEnum):
    """Why a room or participant disconnected (values are the protocol's)."""

    UNKNOWN_REASON = 0
    CLIENT_INITIATED = 1
    DUPLICATE_IDENTITY = 2
    SERVER_SHUTDOWN = 3
    PARTICIPANT_REMOVED = 4
    ROOM_DELETED = 5
    STATE_MISMATCH = 6
    JOIN_FAILURE = 7
    MIGRATION = 8
    SIGNAL_CLOSE = 9
    ROOM_CLOSED = 10
    USER_UNAVAILABLE = 11
    USER_REJECTED = 12
    SIP_TRUNK_FAILURE = 13
    CONNECTION_TIMEOUT = 14
    MEDIA_FAILURE = 15
    AGENT_ERROR = 16

    @classmethod
    def of(cls, value: int) -> DisconnectReason:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN_REASON


@dataclass(frozen=True)
class ParticipantConnected:
    participant: RemoteParticipant


@dataclass(frozen=True)
class ParticipantDisconnected:
    participant: RemoteParticipant
    reason: DisconnectReason


@dataclass(frozen=True)
class ParticipantActive:
    participant: RemoteParticipant


@dataclass(frozen=True)
class LocalTrackPublished:
    publication: LocalTrackPublication


@dataclass(frozen=True)
class LocalTrackUnpublished:
    publication: LocalTrackPublication


@dataclass(frozen=True)
class LocalTrackSubscribed:
    """A remote participant subscribed to one of our tracks (the first time)."""

    publication: LocalTrackPublication


@dataclass(frozen=True)
class TrackPublished:
    publication: RemoteTrackPublication
    participant: RemoteParticipant


@dataclass(frozen=True)
class TrackUnpublished:
    publication: RemoteTrackPublication
    participant: RemoteParticipant


@dataclass(frozen=True)
class TrackSubscribed:
    """A remote track is ready: open a stream on ``track``."""

    track: RemoteTrack
    publication: RemoteTrackPublication
    participant: RemoteParticipant


@dataclass(frozen=True)
class TrackUnsubscribed:
    """The track stopped; its streams end."""

    track: RemoteTrack
    publication: RemoteTrackPublication
    participant: RemoteParticipant


@dataclass(frozen=True)
class TrackSubscriptionFailed:
    participant: RemoteParticipant
    track_sid: str
    error: str


@dataclass(frozen=True)
class TrackMuted:
    participant: Participant
    track_sid: str


@dataclass(frozen=True)
class TrackUnmuted:
    participant: Participant
    track_sid: str


@dataclass(frozen=True)
class ActiveSpeakersChanged:
    speakers: tuple[Participant, ...]


@dataclass(frozen=True)
class RoomMetadataChanged:
    metadata: str


@dataclass(frozen=True)
class RoomSidChanged:
    sid: str


@dataclass(frozen=True)
class ParticipantMetadataChanged:
    participant: Participant
    metadata: str


@dataclass(frozen=True)
class ParticipantNameChanged:
    participant: Participant
    name: str


@dataclass(frozen=True)
class ParticipantAttributesChanged:
    participant: Participant
    changed: dict[str, str]


@dataclass(frozen=True)
class ConnectionQualityChanged:
    participant: Participant
    quality: ConnectionQuality


@dataclass(frozen=True)
class ConnectionStateChanged:
    state: ConnectionState


@dataclass(frozen=True)
class DataReceived:
    """A data packet: ``participant`` is None when the server sent it or the sender left."""

    payload: bytes
    topic: str
    sender_identity: str
    participant: RemoteParticipant | None
    reliable: bool


@dataclass(frozen=True)
class Reconnecting:
    pass


@dataclass(frozen=True)
class Reconnected:
    pass


@dataclass(frozen=True)
class Disconnected:
    reason: DisconnectReason


@dataclass(frozen=True)
class OtherRoomEvent:
    """A protocol event without a typed class here (chat, transcription, data streams, e2ee...).

    ``name`` is the protocol's field name; ``message`` the raw protobuf message.
    """

    name: str
    message: Any = field(repr=False)


RoomEvent = Union[
    ParticipantConnected, ParticipantDisconnected, ParticipantActive, LocalTrackPublished,
    LocalTrackUnpublished, LocalTrackSubscribed, TrackPublished, TrackUnpublished,
    TrackSubscribed, TrackUnsubscribed, TrackSubscriptionFailed, TrackMuted, TrackUnmuted,
    ActiveSpeakersChanged, RoomMetadataChanged, RoomSidChanged, ParticipantMetadataChanged,
    ParticipantNameChanged, ParticipantAttributesChanged, ConnectionQualityChanged,
    ConnectionStateChanged, DataReceived, Reconnecting, Reconnected, Disconnected, OtherRoomEvent,
]

DEFAULT_EVENT_CAPACITY = 256
MAX_EVENT_CAPACITY = 4096
"""Largest ``room.events(capacity=)``: a reader that buffers more is not reading; at most
64 MB even if every buffered event is a data packet of the largest size (15 KiB)."""


class RoomEvents:
    """One reader's view of a room's events, from the moment it was opened.

    Iterate it (``async for event in room.events()``); iteration ends when the room closes.
    It buffers at most ``capacity`` events; when the reader falls behind the oldest is
    dropped and counted in :attr:`dropped`. Use as ``with room.events() as events:`` to stop
    buffering as soon as the block ends (otherwise it stops when garbage collected).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[RoomEvent] = deque()
        self._ended = False
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()

    def _push(self, event: RoomEvent) -> None:
        if self._closed or self._ended:
            return
        if len(self._items) >= self.capacity:
            self._items.popleft()
            self.dropped += 1
        self._items.append(event)
        self._lot.unpark_all()

    def _end(self) -> None:
        self._ended = True
        self._lot.unpark_all()

    def receive_nowait(self) -> RoomEvent:
        """The oldest buffered event; ``trio.WouldBlock`` if none yet."""
        if self._closed:
            raise trio.ClosedResourceError("this event iterator is closed")
        if self._items:
            return self._items.popleft()
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> RoomEvent:
        """The next event; ``trio.EndOfChannel`` once the room closed and all were read."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                event = self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()
                continue
            await trio.lowlevel.cancel_shielded_checkpoint()
            return event

    def close(self) -> None:
        """Stop buffering and drop what is buffered."""
        self._closed = True
        self._items.clear()
        self._lot.unpark_all()

    def __enter__(self) -> RoomEvents:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __aiter__(self) -> RoomEvents:
        return self

    async def __anext__(self) -> RoomEvent:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
