"""The far end of the room-* bench scenarios: remote participants that publish, on rtc_trio.

    python bench/room_publisher.py MODE --room NAME [--tracks N] [--deadline S]

Started by bench/run.py (through bench/_server.py) for both measured sides alike, so the
load they receive is the same. The server comes from RTC_TRIO_BENCH_URL/_API_KEY/_API_SECRET.

Modes:
  audio  N participants ``pub-0`` .. ``pub-{N-1}``, one microphone track each, 10 ms frames
         of 48 kHz mono, frame ``k`` carrying ``k % 64`` (bench/_room_codes.py), sent at real
         time from each source's native queue (200 ms, so that this process running late on a
         busy host does not starve the stream; it counts the times it did: underruns)
  echo   one participant publishing numbered frames as ``audio`` does, but paced here into a
         direct source (no queue: each frame's capture time is known), that also listens to
         the measured process's track and times each frame's return (round trip)
  video  one participant with a 1280x720 camera track at 30 fps, frame numbers in the picture

Protocol: prints ``ready`` once everything is published; then reads ``stop T0 T1`` on stdin
(perf_counter seconds: the same clock in every process on the machine) and prints one JSON
object: the frames that went out inside [T0, T1) (audio: played from the sources' queues),
how late its pacing ran, and in echo mode the round trips of the frames that came back
inside the window.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import trio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rtc_trio as rtc  # noqa: E402
from _measure import percentile  # noqa: E402
from _room_codes import (  # noqa: E402
    CODES, FRAME, KEPT, RATE, code_frame, decode, gaps, keep, video_background, video_frame,
)
from _server import named, token  # noqa: E402

CONNECT_AT_ONCE = 8  # concurrent connects while N participants join
QUEUE_MS = 200  # each audio source's native queue: the frames go out at real time from it
AUDIO_PERIOD = FRAME / RATE
VIDEO_FPS = 30.0
WIDTH, HEIGHT = 1280, 720


@dataclass
class Pacing:
    """What went out when. Queued audio streams (mode audio): after each capture, the time and
    how many frames the source's queue had played by then (captured minus still queued), one
    list per stream. Paced frames (modes echo and video): the due time and the actual capture
    time of each. Underruns: captures that found their audio queue nearly empty (this process
    had run late by more than the queue)."""

    played: list[list[tuple[float, int]]] = field(default_factory=list)
    due: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    underruns: list[float] = field(default_factory=list)

    def sent_in(self, t0: float, t1: float) -> int:
        """Frames that went out inside [t0, t1), over all streams."""
        return (sum(_played_by(p, t1) - _played_by(p, t0) for p in self.played)
                + sum(1 for t in self.sent_at if t0 <= t < t1))

    def report(self, t0: float, t1: float) -> dict[str, Any]:
        """How late the paced captures ran inside the window (ms), and the audio underruns."""
        late = [s - d for d, s in zip(self.due, self.sent_at) if t0 <= s < t1]
        p99, worst = percentile(late, 99), max(late, default=None)
        return {"publisher_late_ms_p99": None if p99 is None else p99 * 1e3,
                "publisher_late_ms_max": None if worst is None else worst * 1e3,
                "publisher_underruns": sum(1 for t in self.underruns if t0 <= t < t1)}


def _played_by(samples: list[tuple[float, int]], t: float) -> int:
    """Frames played by time ``t`` (the last sample at or before it)."""
    i = bisect.bisect_right(samples, (t, 1 << 62))
    return samples[i - 1][1] if i else 0


@dataclass
class Echo:
    """What came back: kept samples and the arrival time of each received frame."""

    kept: list[np.ndarray] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)

    def round_trips(self, sent_at: list[float], t0: float, t1: float) -> list[float]:
        """Seconds from each frame's capture (``sent_at[k]``) to the arrival of the frame it
        came back in, for frames arriving inside [t0, t1). A code is taken for the newest
        frame with that code captured by then: round trips over 0.64 s (64 frames) alias."""
        if not self.kept:
            return []
        samples = np.concatenate(self.kept)
        trips = []
        for symbol in decode(samples):
            arrived = self.arrivals[symbol.position // KEPT]
            if not t0 <= arrived < t1:
                continue
            newest = bisect.bisect_right(sent_at, arrived) - 1
            k = newest - (newest - symbol.code) % CODES
            if k >= 0:
                trips.append(arrived - sent_at[k])
        return trips


async def publish_audio(room: rtc.Room, index: int, sources: list[rtc.AudioSource | None],
                        stack: contextlib.AsyncExitStack, queue_ms: int) -> None:
    """Publish one microphone track; its source goes into ``sources``."""
    src = await stack.enter_async_context(
        rtc.open_audio_source(sample_rate=RATE, num_channels=1, queue_size_ms=queue_ms))
    track = stack.enter_context(rtc.LocalAudioTrack.create(f"tone-{index}", src))
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE))
    sources[index] = src


async def participant(index: int, limiter: trio.CapacityLimiter, room_name: str, listens: bool,
                      sources: list[rtc.AudioSource | None], joined: list[rtc.Room | None],
                      done: trio.Event) -> None:
    """One publishing participant: joins, publishes, stays until ``done``; subscribes to
    what others publish only if it ``listens``."""
    url = named().url
    async with contextlib.AsyncExitStack() as stack:
        async with limiter:
            room = await stack.enter_async_context(
                rtc.connect(url, token(f"pub-{index}", room_name), auto_subscribe=listens))
            await publish_audio(room, index, sources, stack, 0 if listens else QUEUE_MS)
        joined[index] = room
        await done.wait()


async def feed(src: rtc.AudioSource, frames: list[rtc.AudioFrame], pacing: Pacing) -> None:
    """Frame ``k`` after frame ``k - 1`` into ``src``, until cancelled: the source's queue
    takes them at real time and covers up to QUEUE_MS of this loop running late."""
    played: list[tuple[float, int]] = []
    pacing.played.append(played)
    k = 0
    while True:
        await src.capture_frame(frames[k % CODES])
        k += 1
        queued = src.queued_duration
        played.append((time.perf_counter(), k - round(queued / AUDIO_PERIOD)))
        if k > 1 and queued < AUDIO_PERIOD:
            pacing.underruns.append(time.perf_counter())


async def pace(src: rtc.AudioSource, frames: list[rtc.AudioFrame], pacing: Pacing) -> None:
    """Echo mode: frame ``k`` into a direct source at ``start + k * 10 ms``, until cancelled;
    each frame's capture time is recorded, so the round trip does not depend on a queue."""
    t_first = time.perf_counter() + 0.02
    k = 0
    while True:
        due = t_first + k * AUDIO_PERIOD
        now = time.perf_counter()
        if due > now:
            await trio.sleep(due - now)
        pacing.due.append(due)
        pacing.sent_at.append(time.perf_counter())
        await src.capture_frame(frames[k % CODES])
        k += 1


async def listen(room: rtc.Room, echo: Echo) -> None:
    """Echo mode: keep what comes back on the first audio track subscribed."""
    async for event in room.events():
        if isinstance(event, rtc.TrackSubscribed) and isinstance(event.track, rtc.RemoteAudioTrack):
            async with rtc.open_audio_stream(event.track, sample_rate=RATE,
                                             num_channels=1) as stream:
                async for frame in stream:
                    echo.arrivals.append(time.perf_counter())
                    echo.kept.append(keep(frame.data[:, 0]).copy())
            return


async def pace_video(src: rtc.VideoSource, pacing: Pacing) -> None:
    """30 numbered 720p pictures a second, until cancelled."""
    backgrounds = [video_background(WIDTH, HEIGHT, 4 * i) for i in range(8)]
    t_first = time.perf_counter() + 0.05
    k = 0
    while True:
        due = t_first + k / VIDEO_FPS
        now = time.perf_counter()
        if due > now:
            await trio.sleep(due - now)
        rgba = video_frame(WIDTH, HEIGHT, k & 0xFFFF, backgrounds[k % len(backgrounds)])
        pacing.due.append(due)
        pacing.sent_at.append(time.perf_counter())
        src.capture_frame(rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, rgba),
                          timestamp_us=int(due * 1e6))
        k += 1


async def read_stop() -> tuple[float, float]:
    """Wait for ``stop T0 T1`` on stdin (EOF: an empty window)."""
    line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    parts = line.split()
    if len(parts) == 3 and parts[0] == "stop":
        return float(parts[1]), float(parts[2])
    return 0.0, 0.0


async def run_audio(a: argparse.Namespace) -> dict[str, Any]:
    """Modes audio and echo."""
    n = 1 if a.mode == "echo" else a.tracks
    sources: list[rtc.AudioSource | None] = [None] * n
    joined: list[rtc.Room | None] = [None] * n
    done = trio.Event()
    pacing, echo = Pacing(), Echo()
    async with trio.open_nursery() as nursery:
        limiter = trio.CapacityLimiter(CONNECT_AT_ONCE)
        for i in range(n):
            nursery.start_soon(participant, i, limiter, a.room, a.mode == "echo", sources, joined,
                               done)
        while not all(joined):
            await trio.sleep(0.02)
        ready = [s for s in sources if s is not None]
        if a.mode == "echo" and joined[0] is not None:
            nursery.start_soon(listen, joined[0], echo)
        frames = [rtc.AudioFrame(code_frame(c), sample_rate=RATE) for c in range(CODES)]
        for src in ready:
            nursery.start_soon(pace if a.mode == "echo" else feed, src, frames, pacing)
        print("ready", flush=True)
        t0, t1 = await read_stop()
        report = {"mode": a.mode, "tracks": n, "sent": pacing.sent_in(t0, t1),
                  **pacing.report(t0, t1)}
        if a.mode == "echo":
            trips = echo.round_trips(pacing.sent_at, t0, t1)
            p50, p99 = percentile(trips, 50), percentile(trips, 99)
            report.update(rtt_ms_p50=None if p50 is None else p50 * 1e3,
                          rtt_ms_p99=None if p99 is None else p99 * 1e3,
                          echoes=len(trips), echo_gaps=gaps(decode(np.concatenate(echo.kept)))
                          if echo.kept else None)
        done.set()
        nursery.cancel_scope.cancel()
    return report


async def run_video(a: argparse.Namespace) -> dict[str, Any]:
    """Mode video."""
    pacing = Pacing()
    url = named().url
    async with rtc.connect(url, token("pub-0", a.room), auto_subscribe=False) as room:
        async with rtc.open_video_source(WIDTH, HEIGHT) as src:
            with rtc.LocalVideoTrack.create("camera", src) as track:
                await room.local_participant.publish_track(track, rtc.TrackPublishOptions(
                    source=rtc.TrackSource.CAMERA, simulcast=False))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pace_video, src, pacing)
                    print("ready", flush=True)
                    t0, t1 = await read_stop()
                    nursery.cancel_scope.cancel()
    return {"mode": "video", "tracks": 1, "sent": pacing.sent_in(t0, t1), **pacing.report(t0, t1)}


def main() -> None:
    """Run one mode under its deadline; print the report (or an error) as one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["audio", "echo", "video"])
    p.add_argument("--room", required=True)
    p.add_argument("--tracks", type=int, default=1)
    p.add_argument("--deadline", type=float, default=300.0)
    a = p.parse_args()

    async def run() -> dict[str, Any]:
        with trio.fail_after(a.deadline):
            return await (run_video(a) if a.mode == "video" else run_audio(a))

    try:
        report = trio.run(run)
    except Exception as e:
        from _measure import describe
        print(json.dumps({"error": describe(e)}), flush=True)
        raise SystemExit(1)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
