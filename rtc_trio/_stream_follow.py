"""Streams that follow a remote track or participant, and end when it goes.

Media layer: a stream follows a :class:`~rtc_trio._track.Followable` (``RemoteTrack``) or a
:class:`FollowableParticipant` (the room layer's ``RemoteParticipant`` builds on it), so that
opening a stream needs nothing from the room layer.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable, Iterator

import trio

from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2
from rtc_trio._router import Subscription
from rtc_trio._stream import StreamT, create_stream
from rtc_trio._track import Followable, Track, TrackKind, TrackSource


class FollowableParticipant(Followable):
    """A remote participant as streams see it (``rtc_trio.RemoteParticipant``): a native
    handle whose media of one source a stream can follow across re-publishes."""

    _handle: NativeHandle

    def __init__(self) -> None:
        super().__init__()
        self._streamed = False  # a participant stream was opened: keep the handle to room close

    def _follow(self, key: int) -> None:
        self._streamed = True
        super()._follow(key)


def check_stream_source(
    function: str, track: object, participant: object, track_source: object, kind: TrackKind
) -> FollowableParticipant | None:
    """Exactly one of ``track`` / ``participant`` (with ``track_source``); the participant, if any."""
    if (track is None) == (participant is None):
        raise TypeError(f"{function} takes exactly one of a track or participant=")
    if participant is None:
        if track_source is not None:
            raise TypeError("track_source goes with participant=, not with a track")
        if not isinstance(track, Track):
            raise TypeError(f"{function} takes a track, not {type(track).__name__}")
        if track.kind != kind:
            raise TypeError(f"{track!r} is not an {kind.name.lower()} track"
                            if kind == TrackKind.AUDIO else f"{track!r} is not a video track")
        return None
    if not isinstance(participant, FollowableParticipant):
        raise TypeError(f"participant must be a RemoteParticipant, not {type(participant).__name__}")
    if not isinstance(track_source, TrackSource):
        raise TypeError("participant= needs track_source=, a TrackSource")
    return participant


def check_stream_open(track: Track | None, participant: FollowableParticipant | None) -> None:
    if participant is not None:
        if participant._gone or participant._handle.released:
            raise trio.ClosedResourceError(f"{participant!r} has left the room")
    elif track is not None:
        track._check_open()


@contextlib.contextmanager
def stream_scope(track: Track | None, participant: FollowableParticipant | None,
                 key: int) -> Iterator[None]:
    """While the block runs, the stream ``key`` ends when its remote track or participant goes."""
    followed = participant if participant is not None else track
    if not isinstance(followed, Followable):
        yield  # a local track: releasing it ends its streams natively
        return
    followed._follow(key)
    try:
        yield
    finally:
        followed._stream_keys.discard(key)


@contextlib.asynccontextmanager
async def open_frame_stream(
    track: Track | None, participant: FollowableParticipant | None,
    track_source: TrackSource | None, requests: tuple[str, str], configure: Callable[[Any], None],
    capacity: int, make: Callable[[Subscription[Any], NativeHandle], StreamT],
) -> AsyncIterator[StreamT]:
    """The lifecycle both stream openers share, once their arguments are checked.

    ``requests`` names the FfiRequest fields that open a stream on a track and on a
    participant's track of a source; ``configure`` fills in the rest of that request. The
    stream ends with the block, and with the remote track or participant it follows.
    """
    check_stream_open(track, participant)
    await trio.lowlevel.checkpoint()
    check_stream_open(track, participant)  # it may have gone during the checkpoint
    req = ffi_pb2.FfiRequest()
    on_track, on_participant = requests
    if participant is not None:
        new = getattr(req, on_participant)
        new.participant_handle = participant._handle.id
        new.track_source = int(track_source)  # type: ignore[arg-type]
    elif track is not None:
        new = getattr(req, on_track)
        new.track_handle = track._handle.id
    else:
        raise TypeError("a stream reads a track, or a participant's track of a source")
    configure(new)
    stream = create_stream(req, capacity, make)
    try:
        with stream_scope(track, participant, stream._handle.id):
            yield stream
    finally:
        stream._close()
