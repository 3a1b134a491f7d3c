"""Local tracks: a named, mutable view of a source that streams and rooms consume."""

from __future__ import annotations

import enum
from typing import TypeVar

import trio

from rtc_trio import _native, _router, _validate
from rtc_trio._audio_source import AudioSource
from rtc_trio._handles import NativeHandle
from rtc_trio._errors import RtcError
from rtc_trio._proto import ffi_pb2, track_pb2
from rtc_trio._stats import StatsReport, stats_report
from rtc_trio._video_source import VideoSource


class TrackSource(enum.IntEnum):
    """Where a track's media comes from (values are the protocol's)."""

    UNKNOWN = 0
    CAMERA = 1
    MICROPHONE = 2
    SCREENSHARE = 3
    SCREENSHARE_AUDIO = 4


class TrackKind(enum.IntEnum):
    """Whether a track carries audio or video."""

    UNKNOWN = 0
    AUDIO = 1
    VIDEO = 2


TrackT = TypeVar("TrackT", bound="Track")
LocalT = TypeVar("LocalT", bound="_LocalTrack")


class Track:
    """A native track handle and its info; closing it ends the streams reading it."""

    kind: TrackKind = TrackKind.UNKNOWN

    def __init__(self, owned: track_pb2.OwnedTrack) -> None:
        self._handle = NativeHandle(owned.handle.id)
        self.sid = owned.info.sid
        self.name = owned.info.name
        self.muted = owned.info.muted

    @property
    def closed(self) -> bool:
        """True once the track was closed: it can no longer be streamed, muted or published."""
        return self._handle.released

    def _check_open(self) -> None:
        if self._handle.released:
            raise trio.ClosedResourceError(f"track {self.name!r} is closed")

    def close(self) -> None:
        """Release the native track; streams on it end. Closing twice is harmless."""
        self._handle.release()

    def __enter__(self: TrackT) -> TrackT:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- stats (rtc_trio._stats) -------------------------------------------------------------
    async def get_stats(self) -> StatsReport:
        """The track's WebRTC statistics (empty for a track that is not published or received)."""
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.get_stats.track_handle = self._handle.id
        callback = await _native.request_async(req, "get_stats")
        if callback.HasField("error") and callback.error:
            raise RtcError(f"get_stats failed: {callback.error}")
        return stats_report(callback.stats)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("muted" if self.muted else "live")
        return f"{type(self).__name__}({self.name!r}, sid={self.sid!r}, {state})"


class _LocalTrack(Track):
    def mute(self) -> None:
        """Send silence (audio) or black (video) instead of the source's media."""
        self._set_muted(True)

    def unmute(self) -> None:
        self._set_muted(False)

    def _set_muted(self, muted: bool) -> None:
        self._check_open()
        req = ffi_pb2.FfiRequest()
        req.local_track_mute.track_handle = self._handle.id
        req.local_track_mute.mute = muted
        self.muted = _native.request(req).local_track_mute.muted


def _check_name(name: object) -> str:
    return _validate.string("name", name)


def _check_local(name: str, source: object,
                 source_type: type[AudioSource] | type[VideoSource]) -> str:
    """``name`` checked, once ``source`` is an open ``source_type``."""
    if not isinstance(source, source_type):
        raise TypeError(f"source must be a {source_type.__name__}, not {type(source).__name__}")
    if source._handle.released:
        raise trio.ClosedResourceError(f"the {source_type.__name__} is closed")
    return _check_name(name)


def _create_local(
    cls: type[LocalT], name: str, source: AudioSource | VideoSource,
    source_type: type[AudioSource] | type[VideoSource], field: str,
) -> LocalT:
    """Create a local track of ``cls`` on ``source`` with the ``create_*_track`` request ``field``."""
    checked = _check_local(name, source, source_type)
    req = ffi_pb2.FfiRequest()
    create = getattr(req, field)
    create.name = checked
    create.source_handle = source._handle.id
    return cls(getattr(_native.request(req), field).track)


class LocalAudioTrack(_LocalTrack):
    """An audio track fed by an :class:`AudioSource`; use as ``with LocalAudioTrack.create(...)``."""

    kind = TrackKind.AUDIO

    @classmethod
    def create(cls, name: str, source: AudioSource) -> LocalAudioTrack:
        """A track named ``name`` playing what ``source`` captures; use it as a ``with`` block.

        Raises ``trio.ClosedResourceError`` if the source is closed, ``TypeError`` for another
        kind of source, ``ValueError`` if the source has an open track already: the native
        library was measured to corrupt its heap, now and then, when two tracks of one audio
        source are released (open one source per track and capture into each).
        """
        _check_local(name, source, AudioSource)  # before the observer moves
        if open_tracks := source._open_tracks():
            raise ValueError(
                f"this AudioSource feeds the open track {open_tracks[0].name!r} already: "
                "one open track per audio source (two crash the native library when released)")
        moved = source._track_opening()  # the source's playout observer moves onto this track
        try:
            track = _create_local(cls, name, source, AudioSource, "create_audio_track")
        except BaseException:
            if moved:
                source._observe()  # back onto a track of its own
            raise
        track._source = source
        try:
            source._track_opened(track, observe=moved)
        except BaseException:
            track.close()
            raise
        return track

    _source: AudioSource | None = None

    def close(self) -> None:
        """Release the native track; streams on it end. Closing twice is harmless.

        A source still playing through it is no longer observed: ``wait_for_playout`` then
        raises ``trio.ClosedResourceError`` until another track is opened on the source."""
        if self._source is not None and not self._handle.released:
            self._source._track_closing(self)
        self._handle.release()


class LocalVideoTrack(_LocalTrack):
    """A video track fed by a :class:`VideoSource`; use as ``with LocalVideoTrack.create(...)``."""

    kind = TrackKind.VIDEO

    @classmethod
    def create(cls, name: str, source: VideoSource) -> LocalVideoTrack:
        """A track named ``name`` showing what ``source`` captures; use it as a ``with`` block.

        Raises ``trio.ClosedResourceError`` if the source is closed, ``TypeError`` for another
        kind of source.
        """
        return _create_local(cls, name, source, VideoSource, "create_video_track")


class Followable:
    """Something a stream can follow: it lists the streams that follow it and ends them
    when it goes (a remote track unsubscribed or unpublished, a participant who left)."""

    def __init__(self) -> None:
        self._gone = False
        self._stream_keys: set[int] = set()

    def _go(self) -> None:
        """It went: every stream following it ends (it only ends their router keys)."""
        self._gone = True
        for key in list(self._stream_keys):
            _router.end(key)

    def _follow(self, key: int) -> None:
        self._stream_keys.add(key)


class RemoteTrack(Track, Followable):
    """A track another participant publishes, received through a room that owns it.

    It is usable while subscribed: once unsubscribed (or its room closed) it is closed, its
    streams end and new streams on it raise ``trio.ClosedResourceError``. The room releases
    the native handle when it closes.
    """

    def __init__(self, owned: track_pb2.OwnedTrack) -> None:
        Track.__init__(self, owned)
        Followable.__init__(self)

    @property
    def closed(self) -> bool:
        """True once the track was unsubscribed, unpublished or its room closed."""
        return self._gone or self._handle.released

    def _check_open(self) -> None:
        if self.closed:
            raise trio.ClosedResourceError(f"remote track {self.name!r} is no longer subscribed")

    def close(self) -> None:
        """Stop using the track here: its streams end. The room keeps the native handle."""
        self._go()


class RemoteAudioTrack(RemoteTrack):
    """Audio another participant publishes; read it with :func:`open_audio_stream`."""

    kind = TrackKind.AUDIO


class RemoteVideoTrack(RemoteTrack):
    """Video another participant publishes; read it with :func:`open_video_stream`."""

    kind = TrackKind.VIDEO
