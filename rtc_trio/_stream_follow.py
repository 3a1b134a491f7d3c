"""Streams that follow a remote track or participant, and end when it goes.

Media layer: a stream follows a :class:`~rtc_trio._track.Followable` (``RemoteTrack``) or a
:class:`FollowableParticipant` (the room layer's ``RemoteParticipant`` builds on it), so that
opening a stream needs nothing from the room layer.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import trio

from rtc_trio._handles import NativeHandle
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
