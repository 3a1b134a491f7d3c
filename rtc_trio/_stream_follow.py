"""Streams that follow a remote track, or a participant by identity.

Media layer: a stream follows a :class:`~rtc_trio._track.Followable` (``RemoteTrack``), and
ends when it goes, or a :class:`FollowableParticipant` (the room layer's ``RemoteParticipant``
builds on it), so that opening a stream needs nothing from the room layer.

A stream that follows a participant follows their identity: the native stream reads the
participant's track of one source across re-publishes; when the participant leaves (or the
room's full reconnect replaces them with a new participant object of the same identity) the
room hands the stream's :class:`Follower` to the participant who comes back, and a new native
stream replaces the old one under the same stream object. The stream ends once the
participant has been gone for longer than its grace period, when the room disconnects, or
with its block.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, AsyncIterator, Callable, Iterator

import numpy as np
import trio

from rtc_trio import _router
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2
from rtc_trio._router import Subscription
from rtc_trio._stream import FrameStream, StreamT, Succession, create_stream, open_native
from rtc_trio._track import Followable, Track, TrackKind, TrackSource

logger = logging.getLogger("rtc_trio")

REJOIN_GRACE = 10.0
"""Seconds a stream that follows a participant waits for them to come back after they left.

It covers what looks like a departure but is not one: a remote's full reconnect (the server
replaces the session at once), a remote app restarting or a browser tab reloading (a few
seconds), a server asking this client to reconnect (departure and return within a second);
and it is short enough that a consumer learns of a real departure within seconds. A
departure reported while the room is reconnecting (this client's own link is down) starts
no grace until the room is back: it may last as long as the native retry window."""


class FollowableParticipant:
    """A remote participant as streams see it (``rtc_trio.RemoteParticipant``): a native
    handle, an identity, and the streams that follow that identity."""

    _handle: NativeHandle
    identity: str

    def __init__(self) -> None:
        self._gone = False
        self._streamed = False  # a participant stream was opened: keep the handle to room close
        self._followers: set[Follower] = set()
        self._successor: FollowableParticipant | None = None  # who came back under the identity

    def _current(self) -> FollowableParticipant:
        """This participant, or the latest one who came back under their identity."""
        current = self
        while current._successor is not None:
            current = current._successor
        return current

    def _depart(self, held: bool = False) -> bool:
        """They left: their streams wait for them, for the grace period (``held``: the room is
        reconnecting, the grace starts at :meth:`_hold_over`). True if any stream waits."""
        self._gone = True
        deadline = math.inf if held else trio.current_time()
        for follower in list(self._followers):
            follower.departed(deadline)
        return bool(self._followers)

    def _hold_over(self) -> None:
        """The room reconnected without them: the grace period of streams held starts now."""
        now = trio.current_time()
        for follower in self._followers:
            follower.grace_from(now)

    def _go(self) -> None:
        """The room is gone: every stream following them ends, for good."""
        self._gone = True
        for follower in list(self._followers):
            follower.end()

    def _succeed(self, previous: FollowableParticipant) -> None:
        """``previous``, who left, is back as this participant: their streams follow on."""
        previous._successor = self
        followers, previous._followers = previous._followers, set()
        for follower in followers:
            follower.rejoined(self)


class Follower:
    """The link of one stream to the identity it follows, moved by the room from participant
    to participant; it opens the native stream of each."""

    def __init__(self, stream: FrameStream[Any], participant: FollowableParticipant,
                 request: Callable[[FollowableParticipant], ffi_pb2.FfiRequest], grace: float) -> None:
        self.stream = stream
        self.participant = participant
        self._request = request
        self._grace = grace
        self.succession = stream._succession = Succession()
        self._attach(participant)

    def _attach(self, participant: FollowableParticipant) -> None:
        self.participant = participant
        participant._followers.add(self)
        participant._streamed = True

    def detach(self) -> None:
        """The stream's block ended."""
        self.participant._followers.discard(self)

    def departed(self, start: float) -> None:
        """The participant left: the native stream ends, the grace period starts at ``start``
        (``math.inf``: when the room is back, see :meth:`grace_from`)."""
        self.succession.deadline = start + self._grace
        self._end_source()

    def grace_from(self, now: float) -> None:
        """The room is back: a grace period held while it reconnected starts ``now``."""
        if self.succession.deadline == math.inf:
            self.succession.deadline = now + self._grace
            self.stream._wake()

    def end(self) -> None:
        self.succession.ended = True
        self._end_source()

    def _end_source(self) -> None:
        """The native stream read now ends (its consumer is woken to see it)."""
        if not self.stream._closed:  # (aclose() before the block's end): nothing to end
            _router.end(self.stream._handle.id)
            self.stream._wake()

    def rejoined(self, participant: FollowableParticipant) -> None:
        """The participant is back as ``participant``: read their media from now on (after
        what the stream still holds from before), unless the grace period ran out or the
        stream was closed (then it ends)."""
        if self.succession.over() or self.stream._closed:
            self.end()
            return
        self._attach(participant)
        try:
            sub, handle = open_native(self._request(participant), self.stream._sub.capacity)
            self.stream._succeed(sub, handle)
        except Exception:  # refused natively: the stream ends as if the participant had not come back
            logger.exception("rtc_trio could not follow %r back into the room", participant)
            self.end()
            return
        self.succession.deadline = math.inf


def check_stream_source(
    function: str, track: object, participant: object, track_source: object, kind: TrackKind,
    rejoin_grace: object = REJOIN_GRACE,
) -> tuple[FollowableParticipant | None, float]:
    """Exactly one of ``track`` / ``participant`` (with ``track_source``): the participant, if
    any, and the grace period in seconds."""
    if (track is None) == (participant is None):
        raise TypeError(f"{function} takes exactly one of a track or participant=")
    if participant is None:
        if track_source is not None:
            raise TypeError("track_source goes with participant=, not with a track")
        if rejoin_grace != REJOIN_GRACE:
            raise TypeError("rejoin_grace goes with participant=, not with a track")
        if not isinstance(track, Track):
            raise TypeError(f"{function} takes a track, not {type(track).__name__}")
        if track.kind != kind:
            raise TypeError(f"{track!r} is not an {kind.name.lower()} track"
                            if kind == TrackKind.AUDIO else f"{track!r} is not a video track")
        return None, 0.0
    grace = check_grace(rejoin_grace)
    if not isinstance(participant, FollowableParticipant):
        raise TypeError(f"participant must be a RemoteParticipant, not {type(participant).__name__}")
    if not isinstance(track_source, TrackSource):
        raise TypeError("participant= needs track_source=, a TrackSource")
    return participant, grace


def check_grace(value: object) -> float:
    """``rejoin_grace`` as a float: seconds from 0 to ``math.inf`` (never end while in the room)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"rejoin_grace must be a number of seconds, not {type(value).__name__}")
    grace = float(value)
    if not grace >= 0:  # NaN too
        raise ValueError(f"rejoin_grace must be 0 or more seconds (math.inf: no limit), got {value}")
    return grace


def check_stream_open(track: Track | None, participant: FollowableParticipant | None
                      ) -> FollowableParticipant | None:
    """Refuse to open a stream on what is gone; the participant to follow now, if any."""
    if participant is not None:
        current = participant._current()
        if current._gone or current._handle.released:
            raise trio.ClosedResourceError(f"{participant!r} has left the room")
        return current
    if track is not None:
        track._check_open()
    return None


@contextlib.contextmanager
def stream_scope(track: Track | None, key: int) -> Iterator[None]:
    """While the block runs, the stream ``key`` ends when its remote track goes."""
    if not isinstance(track, Followable):
        yield  # a local track: releasing it ends its streams natively
        return
    track._follow(key)
    try:
        yield
    finally:
        track._stream_keys.discard(key)


@contextlib.asynccontextmanager
async def open_frame_stream(
    track: Track | None, participant: FollowableParticipant | None,
    track_source: TrackSource | None, requests: tuple[str, str], configure: Callable[[Any], None],
    capacity: int, make: Callable[[Subscription[Any], NativeHandle], StreamT],
    rejoin_grace: float = REJOIN_GRACE,
) -> AsyncIterator[StreamT]:
    """The lifecycle both stream openers share, once their arguments are checked.

    ``requests`` names the FfiRequest fields that open a stream on a track and on a
    participant's track of a source; ``configure`` fills in the rest of that request. The
    stream ends with the block, with the remote track it reads, or once the participant it
    follows has been gone for ``rejoin_grace`` seconds.
    """
    check_stream_open(track, participant)
    await trio.lowlevel.checkpoint()
    participant = check_stream_open(track, participant)  # it may have gone during the checkpoint
    on_track, on_participant = requests

    def from_participant(who: FollowableParticipant) -> ffi_pb2.FfiRequest:
        req = ffi_pb2.FfiRequest()
        new = getattr(req, on_participant)
        new.participant_handle = who._handle.id
        new.track_source = int(track_source)  # type: ignore[arg-type]
        configure(new)
        return req

    if participant is not None:
        req = from_participant(participant)
    elif track is not None:
        req = ffi_pb2.FfiRequest()
        new = getattr(req, on_track)
        new.track_handle = track._handle.id
        configure(new)
    else:
        raise TypeError("a stream reads a track, or a participant's track of a source")
    stream = create_stream(req, capacity, make)
    try:
        if participant is None:
            with stream_scope(track, stream._handle.id):
                yield stream
        else:
            follower = Follower(stream, participant, from_participant, rejoin_grace)
            try:
                yield stream
            finally:
                follower.detach()
    finally:
        stream._close()
