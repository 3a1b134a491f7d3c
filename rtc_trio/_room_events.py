"""Typed room events, and the bounded per-reader channels that deliver them."""

from __future__ import annotations

import enum
from abc import ABCMeta
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Union, final

import trio

from rtc_trio._participant import Participant, RemoteParticipant
from rtc_trio._publications import LocalTrackPublication, RemoteTrackPublication, TrackPublication
from rtc_trio._rpc import TranscriptionSegment
from rtc_trio._track import RemoteTrack


class ConnectionState(enum.IntEnum):
    """The room's connection to the server (values are the protocol's)."""

    DISCONNECTED = 0
    CONNECTED = 1
    RECONNECTING = 2


class ConnectionQuality(enum.IntEnum):
    """A participant's connection quality as the server rates it (values are the protocol's)."""

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
    """The link to the server was lost (its ping timed out, or the server went away); the
    native side is trying to resume the session, then to rejoin. Streams keep their place;
    a participant's departure reported from now on starts no ``rejoin_grace`` until
    :class:`Reconnected`."""


@dataclass(frozen=True)
class Reconnected:
    """Back: the session was resumed, or the room rejoined in full (then the remote
    participants came back as new objects, and streams that follow them follow on)."""


@dataclass(frozen=True)
class Disconnected:
    """The room is over (the server or this client ended it, or the native side gave up
    reconnecting): every stream of the room ends."""

    reason: DisconnectReason


# -- DTMF and transcriptions (rtc_trio._rpc) ---------------------------------------------------
@dataclass(frozen=True)
class SipDtmfReceived:
    """A SIP DTMF tone (``publish_dtmf``); ``participant`` is None when the sender is unknown here."""

    code: int
    digit: str
    sender_identity: str
    participant: RemoteParticipant | None


@dataclass(frozen=True)
class TranscriptionReceived:
    """A transcription of ``track_sid`` of ``participant_identity`` (``publish_transcription``).

    ``participant`` and ``publication`` are None when the room does not know them (yet).
    """

    segments: tuple[TranscriptionSegment, ...]
    participant_identity: str
    participant: Participant | None
    track_sid: str
    publication: TrackPublication | None


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
    SipDtmfReceived, TranscriptionReceived,
]
RoomEvent.__doc__ = """Any event a :class:`RoomEvents` channel delivers: one of the typed event classes."""

DEFAULT_EVENT_CAPACITY = 256
MAX_EVENT_CAPACITY = 4096
"""Largest ``room.events(capacity=)``: a reader that buffers more is not reading; at most
64 MB even if every buffered event is a data packet of the largest size (15 KiB)."""


@dataclass(frozen=True)
class RoomEventsStatistics:
    """A :class:`RoomEvents` channel's buffer at one moment, like trio's ``MemoryChannelStatistics``."""

    buffered: int
    """Events received and waiting to be read."""
    capacity: int
    """Most events the channel buffers before it drops the oldest."""
    dropped: int
    """Events dropped so far because the reader fell behind."""


class _LibraryMade(ABCMeta):
    """Metaclass of a class only rtc_trio constructs (users get instances from its API)."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{cls.__name__} has no public constructor")


@final
class RoomEvents(trio.abc.ReceiveChannel[RoomEvent], metaclass=_LibraryMade):
    """One reader's channel of a room's events, from the moment :meth:`Room.events` opened it.

    A ``trio.abc.ReceiveChannel``: ``receive()``, ``async for event in events``, ``aclose()``,
    ``async with events:``; it ends (``trio.EndOfChannel``) when the room disconnects or
    closes. It buffers at most ``capacity`` events; when the reader falls behind the oldest
    is dropped and counted in :attr:`dropped`. Closing it (``aclose()``, leaving its
    ``async with`` or ``with`` block, or :meth:`close`) stops the buffering at once;
    otherwise it stops when the channel is garbage collected.
    """

    @classmethod
    def _open(cls, capacity: int) -> RoomEvents:
        channel: RoomEvents = type.__call__(cls, capacity)
        return channel

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("RoomEvents cannot be subclassed")

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

    def statistics(self) -> RoomEventsStatistics:
        """How many events wait to be read, the capacity, and how many were dropped."""
        return RoomEventsStatistics(len(self._items), self.capacity, self.dropped)

    def receive_nowait(self) -> RoomEvent:
        """The oldest buffered event; ``trio.WouldBlock`` if none yet."""
        if self._closed:
            raise trio.ClosedResourceError("this event channel is closed")
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
        """Stop buffering and drop what is buffered; a blocked :meth:`receive` and every
        later one raise ``trio.ClosedResourceError``. Closing twice is harmless."""
        self._closed = True
        self._items.clear()
        self._lot.unpark_all()

    async def aclose(self) -> None:
        """:meth:`close`, as a trio async resource: what leaving ``async with`` does."""
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> RoomEvents:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
