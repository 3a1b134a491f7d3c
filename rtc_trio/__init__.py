"""rtc_trio: LiveKit's real-time audio and video streams for trio, scoped to ``async with``."""

from rtc_trio._audio_frame import AudioFrame
from rtc_trio._audio_source import AudioSource, open_audio_source
from rtc_trio._audio_stream import AudioStream, open_audio_stream
from rtc_trio._errors import ConnectError, NotUnderTrioAsyncio, RtcError
from rtc_trio._stream import StreamStatistics
from rtc_trio._router import sweep_parked as _sweep_parked
from rtc_trio._participant import LocalParticipant, Participant, RemoteParticipant
from rtc_trio._publications import (
    LocalTrackPublication, RemoteTrackPublication, TrackPublication, TrackPublishOptions,
)
from rtc_trio._room import Room, connect
from rtc_trio._room_events import (
    ActiveSpeakersChanged, ConnectionQuality, ConnectionQualityChanged, ConnectionState,
    ConnectionStateChanged, DataReceived, Disconnected, DisconnectReason, LocalTrackPublished,
    LocalTrackSubscribed, LocalTrackUnpublished, OtherRoomEvent, ParticipantActive,
    ParticipantAttributesChanged, ParticipantConnected, ParticipantDisconnected,
    ParticipantMetadataChanged, ParticipantNameChanged, Reconnected, Reconnecting, RoomEvent,
    RoomEvents, RoomEventsStatistics, RoomMetadataChanged, RoomSidChanged, TrackMuted, TrackPublished,
    TrackSubscribed, TrackSubscriptionFailed, TrackUnmuted, TrackUnpublished, TrackUnsubscribed,
)
from rtc_trio._track import (
    LocalAudioTrack, LocalVideoTrack, RemoteAudioTrack, RemoteTrack, RemoteVideoTrack, Track,
    TrackKind, TrackSource,
)
from rtc_trio._video_frame import VideoBufferType, VideoFrame
from rtc_trio._video_source import VideoSource, open_video_source
from rtc_trio._video_stream import VideoStream, open_video_stream
# data streams
from rtc_trio._data_streams import (
    ByteStreamInfo, ByteStreamReader, ByteStreamWriter, IncomingStreams, IncomingStreamsStatistics,
    TextStreamInfo, TextStreamReader, TextStreamWriter,
)
from rtc_trio._errors import StreamError
# voice toolkit: mixer (issue 8)
from rtc_trio._mixer import AudioMixer, open_audio_mixer
# RPC, DTMF, transcriptions, stats (issue 9)
from rtc_trio._errors import RpcError
from rtc_trio._rpc import MAX_RPC_PAYLOAD, RpcInvocation, TranscriptionSegment
from rtc_trio._room_events import SipDtmfReceived, TranscriptionReceived
from rtc_trio._stats import RtpStats, SessionStats, StatsReport
# voice toolkit: resampler and audio processing (issue 8)
from rtc_trio._apm import AudioProcessingModule, ProcessedFrames, open_audio_processor
from rtc_trio._resampler import AudioResampler, AudioResamplerQuality, ResampledFrames, open_resampled
from rtc_trio import _handles
from rtc_trio._ffi import lib as _lib

__all__ = [
    "AudioFrame", "AudioSource", "AudioStream", "LocalAudioTrack", "LocalVideoTrack",
    "RtcError", "StreamStatistics", "Track", "TrackKind", "TrackSource", "VideoBufferType", "VideoFrame",
    "VideoSource", "VideoStream", "live_handles", "open_audio_source", "open_audio_stream",
    "open_video_source", "open_video_stream",
    # rooms
    "ConnectError", "NotUnderTrioAsyncio", "Room", "connect", "Participant", "LocalParticipant", "RemoteParticipant",
    "TrackPublication", "LocalTrackPublication", "RemoteTrackPublication", "TrackPublishOptions",
    "RemoteTrack", "RemoteAudioTrack", "RemoteVideoTrack", "ConnectionState", "ConnectionQuality",
    "DisconnectReason", "RoomEvent", "RoomEvents", "RoomEventsStatistics", "ActiveSpeakersChanged",
    "ConnectionQualityChanged", "ConnectionStateChanged", "DataReceived", "Disconnected",
    "LocalTrackPublished", "LocalTrackSubscribed", "LocalTrackUnpublished", "OtherRoomEvent",
    "ParticipantActive", "ParticipantAttributesChanged", "ParticipantConnected",
    "ParticipantDisconnected", "ParticipantMetadataChanged", "ParticipantNameChanged",
    "Reconnected", "Reconnecting", "RoomMetadataChanged", "RoomSidChanged", "TrackMuted",
    "TrackPublished", "TrackSubscribed", "TrackSubscriptionFailed", "TrackUnmuted",
    "TrackUnpublished", "TrackUnsubscribed",
    # data streams
    "StreamError", "TextStreamInfo", "ByteStreamInfo", "TextStreamReader", "ByteStreamReader",
    "TextStreamWriter", "ByteStreamWriter", "IncomingStreams", "IncomingStreamsStatistics",
    # RPC, DTMF, transcriptions, stats (issue 9)
    "RpcError", "RpcInvocation", "MAX_RPC_PAYLOAD", "TranscriptionSegment", "SipDtmfReceived",
    "TranscriptionReceived", "RtpStats", "SessionStats", "StatsReport",
    # voice toolkit: resampler and audio processing (issue 8)
    "AudioProcessingModule", "AudioResampler", "AudioResamplerQuality", "ProcessedFrames",
    "ResampledFrames", "open_audio_processor", "open_resampled",
]
# voice toolkit: mixer (issue 8)
__all__ += ["AudioMixer", "open_audio_mixer"]


def live_handles() -> int:
    """How many native handles rtc_trio holds now: sources, tracks, streams, frames.

    Events parked for a subscriber that never came are released first once they expire.
    """
    _sweep_parked()
    return _handles.live_handles() + int(_lib.rtc_ring_held())
