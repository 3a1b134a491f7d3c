"""Track publications, as a room sees them, and the options a local track is published with."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from rtc_trio import _native, _validate
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import ffi_pb2, room_pb2, track_pb2
from rtc_trio._track import RemoteTrack, Track, TrackKind, TrackSource


MAX_BITRATE = 1_000_000_000
"""Highest ``*_max_bitrate`` taken (1 Gbit/s): far above any real encoder setting."""


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
        if self.stream is not None:
            _validate.string("stream", self.stream)
        for name in ("dtx", "red", "simulcast"):
            if getattr(self, name) is not None:
                _validate.boolean(name, getattr(self, name))
        for name in ("audio_max_bitrate", "video_max_bitrate"):
            if getattr(self, name) is not None:
                _validate.integer(name, getattr(self, name), 1, MAX_BITRATE, unit=" bit/s")
        if self.video_max_framerate is not None:
            _validate.number("video_max_framerate", self.video_max_framerate)
        if (self.video_max_bitrate is None) != (self.video_max_framerate is None):
            raise ValueError("video_max_bitrate and video_max_framerate go together: set both or neither")

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
        """True while this process receives the track (``track`` is set and open)."""
        return self.track is not None and not self.track.closed

    def set_subscribed(self, subscribed: bool) -> None:
        """Ask the server to (un)subscribe this track (for rooms joined with auto_subscribe=False)."""
        subscribed = _validate.boolean("subscribed", subscribed)
        if self._handle.released:
            raise trio.ClosedResourceError(f"publication {self.sid!r} is gone")
        req = ffi_pb2.FfiRequest()
        req.set_subscribed.subscribe = subscribed
        req.set_subscribed.publication_handle = self._handle.id
        _native.request(req)
