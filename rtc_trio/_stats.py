"""WebRTC statistics, as ``get_stats`` returns them: the RTP figures people read, plus every report.

The native library returns the full W3C ``RTCStats`` set (sixteen kinds, a hundred fields).
:class:`StatsReport` lifts out one :class:`RtpStats` per RTP stream, received or sent, and keeps
every report as the protocol's message in ``raw`` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


@dataclass(frozen=True)
class RtpStats:
    """One RTP stream: what this process receives (``inbound``) or sends (``outbound``)."""

    direction: str
    """``"inbound"`` or ``"outbound"``."""
    kind: str
    """``"audio"`` or ``"video"``."""
    ssrc: int
    packets: int
    """Packets received (inbound) or sent (outbound)."""
    bytes: int
    """Payload bytes received or sent."""
    packets_lost: int
    """Inbound: packets lost (0 for outbound)."""
    jitter: float
    """Inbound: jitter in seconds (0 for outbound)."""
    codec: str
    """The codec's MIME type (``audio/opus``...), or "" when the report does not say."""


@dataclass(frozen=True)
class StatsReport:
    """A statistics report: its RTP streams, and every entry as the native library gave it."""

    rtp: tuple[RtpStats, ...]
    raw: tuple[Any, ...] = field(repr=False)
    """Every ``RtcStats`` protobuf message of the report (codec, transport, candidate pair...)."""

    @property
    def inbound(self) -> tuple[RtpStats, ...]:
        """The streams this process receives."""
        return tuple(s for s in self.rtp if s.direction == "inbound")

    @property
    def outbound(self) -> tuple[RtpStats, ...]:
        """The streams this process sends."""
        return tuple(s for s in self.rtp if s.direction == "outbound")


@dataclass(frozen=True)
class SessionStats:
    """A room's statistics: the connection that publishes and the one that subscribes."""

    publisher: StatsReport
    subscriber: StatsReport


def stats_report(entries: Iterable[Any]) -> StatsReport:
    """A :class:`StatsReport` of the native ``RtcStats`` messages ``entries``."""
    raw = tuple(entries)
    codecs = {e.codec.rtc.id: e.codec.codec.mime_type for e in raw if e.WhichOneof("stats") == "codec"}
    rtp = []
    for entry in raw:
        kind = entry.WhichOneof("stats")
        if kind == "inbound_rtp":
            s = entry.inbound_rtp
            rtp.append(RtpStats("inbound", s.stream.kind, s.stream.ssrc, s.received.packets_received,
                                s.inbound.bytes_received, s.received.packets_lost,
                                s.received.jitter, codecs.get(s.stream.codec_id, "")))
        elif kind == "outbound_rtp":
            s = entry.outbound_rtp
            rtp.append(RtpStats("outbound", s.stream.kind, s.stream.ssrc, s.sent.packets_sent,
                                s.sent.bytes_sent, 0, 0.0, codecs.get(s.stream.codec_id, "")))
    return StatsReport(tuple(rtp), raw)
