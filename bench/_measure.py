"""Measurement helpers shared by both bench sides: CLI params, CPU per thread, RSS, latency.

Nothing here imports either RTC library, so both side scripts measure the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Iterator

SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = 480  # 10 ms mono
QUIET_S = 0.25  # drain ends early after this long without an arrival
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a side script's argv: a scenario name plus workload params."""
    p = argparse.ArgumentParser(description="one bench workload; prints one JSON object")
    p.add_argument("scenario", help="audio-*, video-*, or zero-copy")
    p.add_argument("--streams", type=int, default=1, help="audio sources+streams at once")
    p.add_argument("--duration", type=float, default=2.0, help="seconds of capture")
    p.add_argument("--fps", type=float, default=0.0, help="pacing per stream; 0 = unpaced")
    p.add_argument("--capacity", type=int, default=1000, help="per-stream queue bound, both sides")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--frames", type=int, default=100, help="zero-copy: frames sent in lockstep")
    p.add_argument("--drain", type=float, default=2.0,
                   help="max seconds to wait for frames in flight once capture ends")
    p.add_argument("--messages", type=int, default=200,
                   help="data-rpc: 1 KB text messages (and a hundredth as many of 1 MB, at least 2)")
    p.add_argument("--deadline", type=float, default=60.0,
                   help="the whole workload is abandoned (error) after this many seconds")
    add_room_args(p)
    # -- paced audio: who wakes up to capture (issue 10, sec. 2b) --
    p.add_argument("--pacer", choices=("tasks", "one"), default="tasks",
                   help="paced audio: a task per stream sleeping to each frame's slot (tasks), "
                        "or one task capturing every frame due, waking at most every PACER_TICK_S (one)")
    return p.parse_args(argv)


# -- paced audio with one pacer (issue 10, sec. 2b) ---------------------------------------
PACER_TICK_S = 0.001
"""The one pacer sleeps at least this long between wake-ups and captures every frame due:
1,000 wake-ups a second for any number of streams instead of one per frame."""


def due_slots(t0: float, period: float, streams: int, t_end: float) -> Iterator[tuple[int, int, float]]:
    """(stream, frame number, due time) of every paced frame before ``t_end``, in due order:
    stream i's frame k is due at ``pace_start(t0, period, i, streams) + k * period``."""
    j = 0
    while True:
        i, k = j % streams, j // streams
        due = pace_start(t0, period, i, streams) + k * period
        if due >= t_end:
            return
        yield i, k, due
        j += 1
# -- end paced audio with one pacer --


def _stat_cpu_s(path: str) -> float:
    """utime+stime in seconds from a /proc/.../stat file."""
    with open(path, "rb") as f:
        text = f.read()
    fields = text[text.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # fields 14 and 15 of stat(5)


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds at one instant: the whole process and its main (Python) thread."""

    wall_s: float
    total_s: float
    main_s: float
    threads: int


def cpu_sample() -> CpuSample:
    """Read utime+stime of all threads and of the main thread from /proc.

    The total is /proc/self/stat: the kernel's sum over /proc/self/task/*/stat plus
    the threads that exited inside the window (which a sum over the live tasks would
    miss). The main thread is /proc/self/task/<pid>/stat. Resolution: one clock tick
    (10 ms), so short runs give coarse per-frame figures.
    """
    pid = os.getpid()
    tasks = os.listdir("/proc/self/task")
    total = _stat_cpu_s("/proc/self/stat")
    main = _stat_cpu_s(f"/proc/self/task/{pid}/stat")
    return CpuSample(time.perf_counter(), total, main, len(tasks))


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss, KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def pace_start(t0: float, period: float, index: int, count: int) -> float:
    """First due time of paced stream ``index``: streams are spread over one period."""
    return t0 + index * period / count


def due_frames(first: float, period: float, t_end: float) -> int:
    """How many frames a paced stream starting at ``first`` owes before ``t_end``."""
    return max(0, math.ceil((t_end - first) / period))


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class FrameLog:
    """Send times and arrivals of numbered audio frames, one list per stream.

    A frame carries ``frame_no & 0x7fff`` in sample 0 and its stream id in sample 1;
    the arrival side unwraps the 15-bit number against the last one seen.
    """

    streams: int
    scheduled: int = 0  # paced runs: frames due before the end, sent or not
    sent_at: list[list[float]] = field(default_factory=list)
    last_no: list[int] = field(default_factory=list)
    received: int = 0
    latencies_s: list[float] = field(default_factory=list)
    last_arrival: float = 0.0

    def __post_init__(self) -> None:
        self.sent_at = [[] for _ in range(self.streams)]
        self.last_no = [-1] * self.streams

    @property
    def sent(self) -> int:
        """Frames captured so far over all streams."""
        return sum(len(s) for s in self.sent_at)

    @property
    def expected(self) -> int:
        """Frames that should arrive: captured, or due (paced) even if never captured."""
        return max(self.sent, self.scheduled)

    def arrived(self, stream_id: int, no15: int, now: float) -> None:
        """Record one arrival: unwrap the frame number, look up its send time."""
        expected = self.last_no[stream_id] + 1
        no = no15 + 0x8000 * round((expected - no15) / 0x8000)
        self.last_no[stream_id] = no
        sent = self.sent_at[stream_id]
        if 0 <= no < len(sent):
            self.latencies_s.append(now - sent[no])
        self.received += 1
        self.last_arrival = now


@dataclass
class Counter:
    """Arrivals of a stream without numbered frames (video)."""

    sent: int = 0
    scheduled: int = 0  # paced runs: frames due before the end, sent or not
    received: int = 0
    latencies_s: list[float] = field(default_factory=list)
    last_arrival: float = 0.0
    counting: bool = False  # set when measurement starts: earlier arrivals are warm-up

    @property
    def expected(self) -> int:
        """Frames that should arrive: captured, or due (paced) even if never captured."""
        return max(self.sent, self.scheduled)

    def arrived(self, now: float, capture_ts_us: int | None = None) -> None:
        """Record one arrival; latency from the native capture timestamp when plausible.

        The native video source stamps each frame with CLOCK_MONOTONIC microseconds
        (the clock time.monotonic reads); values outside 0..10 s are ignored.
        """
        if not self.counting:
            return
        self.received += 1
        self.last_arrival = now
        if capture_ts_us:
            lat = time.monotonic() - capture_ts_us / 1e6
            if 0.0 <= lat < 10.0:
                self.latencies_s.append(lat)


@dataclass
class HeapProbe:
    """Python-heap bytes per received frame, from tracemalloc (which must be tracing).

    Call ``arm()`` before waiting for a frame and ``frame()`` on its arrival, while the
    previous frame is still referenced. ``allocated``: peak growth in between, transient
    allocations included (e.g. an event loop's wake-up read buffer); ``retained``: growth
    still held at arrival, i.e. what the new frame keeps on the Python heap.
    """

    allocated: list[int] = field(default_factory=list)
    retained: list[int] = field(default_factory=list)
    _base: int = 0

    def arm(self) -> None:
        """Start the interval for the next frame."""
        tracemalloc.reset_peak()
        self._base = tracemalloc.get_traced_memory()[0]

    def frame(self) -> None:
        """Close the interval: one frame arrived."""
        current, peak = tracemalloc.get_traced_memory()
        self.allocated.append(peak - self._base)
        self.retained.append(current - self._base)

    def per_frame(self) -> tuple[float | None, float | None]:
        """Mean (allocated, retained) bytes per frame, the first (warm-up) frame left out."""
        if len(self.allocated) < 2:
            return None, None
        n = len(self.allocated) - 1
        return sum(self.allocated[1:]) / n, sum(self.retained[1:]) / n


def figures(
    *,
    start: CpuSample,
    end: CpuSample,
    sent: int,
    received: int,
    active_s: float,
    streams: int,
    latencies_s: list[float] | None = None,
    stream_dropped: int | None = None,
    py_heap_bytes_per_frame: float | None = None,
    py_heap_retained_bytes_per_frame: float | None = None,
    payload_bytes: int | None = None,
) -> dict[str, Any]:
    """Build the figure dict every side prints (the schema of bench/run.py's JSON).

    ``active_s`` is first capture to last arrival (frames/s); CPU spans the
    whole window ``start``..``end``. ``drops`` = frames sent - frames received,
    which already includes frames the stream dropped itself (also given apart
    as ``stream_dropped`` where the stream counts them). In paced runs ``sent``
    counts every frame that was due, so a producer that falls behind real time
    shows its unsent frames as drops.
    """
    n = max(received, 1)
    wall = end.wall_s - start.wall_s
    total_us = (end.total_s - start.total_s) * 1e6
    main_us = (end.main_s - start.main_s) * 1e6
    lat = latencies_s or []
    p50 = percentile(lat, 50)
    p99 = percentile(lat, 99)
    return {
        "frames_per_s": received / active_s if active_s > 0 else 0.0,
        "cpu_us_per_frame": total_us / n,
        "python_cpu_us_per_frame": main_us / n,
        "native_cpu_us_per_frame": (total_us - main_us) / n,
        "drops": sent - received,
        "latency_ms_p50": None if p50 is None else p50 * 1e3,
        "latency_ms_p99": None if p99 is None else p99 * 1e3,
        "peak_rss_mb": peak_rss_mb(),
        "py_heap_bytes_per_frame": py_heap_bytes_per_frame,
        "streams": streams,
        # extras
        "py_heap_retained_bytes_per_frame": py_heap_retained_bytes_per_frame,
        "sent": sent,
        "received": received,
        "stream_dropped": stream_dropped,
        "cpu_percent": 100.0 * (total_us / 1e6) / wall if wall > 0 else None,
        "wall_s": wall,
        "threads": end.threads,
        "payload_bytes": payload_bytes,
    }


def describe(exc: BaseException) -> str:
    """One line for an error, unwrapping exception groups to their first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def emit(result: dict[str, Any]) -> None:
    """Print the one JSON object of a side run and flush it."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# -- data-rpc: text streams ----------------------------------------------------------------------

TEXT_SIZES = {"1k": 1024, "1m": 1024 * 1024}
"""The two text-stream workloads: messages of 1 KB and of 1 MB, sent one after another."""


def text_counts(messages: int) -> dict[str, int]:
    """How many messages of each size a data-rpc run sends."""
    return {"1k": messages, "1m": max(2, messages // 100)}


_WORDS = ("the of and to in is was for on that with as by at from his her they this had are "
          "but not be or have which one you were all their an she there been has when who will "
          "more no if out so said what up its about into than them can only other new some "
          "could time these two may then do first any my now such like our over man me even "
          "most made after also did many before must through back years where much your way "
          "well down should because each just those people how too little state good very make "
          "world still own see men work long get here between both life being under never day "
          "same another know while last might us great old year off come since against go came "
          "right used take three").split()


def text_messages(count: int, size: int) -> list[str]:
    """``count`` messages of ``size`` ASCII characters: each its number, then random words
    (seeded), which compress about as well as real text (both SDKs compress by default)."""
    messages = []
    for index in range(count):
        words = random.Random(index * 1_000_003 + size).choices(_WORDS, k=size // 3 + 4)
        messages.append((f"{index:08d}: " + " ".join(words))[:size])
    return messages


def text_message_index(text: str) -> int:
    """The number a message starts with, or -1."""
    try:
        return int(text[:8])
    except ValueError:
        return -1


def text_figures(label: str, *, size: int, sent: int, received: int, start: CpuSample,
                 end: CpuSample, last_arrival: float) -> dict[str, Any]:
    """The text-stream figures of one size, keyed by ``label`` (1k, 1m): MB/s from the first
    send to the last message read whole, CPU (all threads, both participants) per MB."""
    megabytes = received * size / 1e6
    active = last_arrival - start.wall_s
    return {
        f"text_mb_per_s_{label}": megabytes / active if received and active > 0 else 0.0,
        f"text_cpu_ms_per_mb_{label}": (end.total_s - start.total_s) * 1e3 / megabytes
        if megabytes else None,
        f"text_sent_{label}": sent,
        f"text_received_{label}": received,
    }


def room_tokens(identities: tuple[str, ...] = ("alice", "bob")) -> tuple[str, list[str]]:
    """The URL of the LiveKit server the environment names (bench/_server.py) and a join
    token per identity for one fresh room."""
    from _server import NO_SERVER, from_env, token

    server = from_env()
    if server is None:
        raise RuntimeError(NO_SERVER)
    room = f"bench-{os.getpid()}-{time.monotonic_ns()}"
    return server.url, [token(identity, room) for identity in identities]


# ---- data-rpc: RPC round trips (issue 9) ----

RPC_PAYLOAD = "x" * 100  # each call's request; the callee answers it back


def call_figures(*, start: CpuSample, end: CpuSample, calls: int, errors: int,
                 latencies_s: list[float], in_flight: int) -> dict[str, Any]:
    """The figures of an RPC run: completed calls over the window ``start``..``end``.

    Caller and callee are two participants of one process (each side's), so CPU per call
    counts both ends of a round trip; the server's CPU is not counted.
    """
    n = max(calls, 1)
    wall = end.wall_s - start.wall_s
    total_us = (end.total_s - start.total_s) * 1e6
    main_us = (end.main_s - start.main_s) * 1e6
    p50, p99 = percentile(latencies_s, 50), percentile(latencies_s, 99)
    return {
        "calls_per_s": calls / wall if wall > 0 else 0.0,
        "cpu_us_per_call": total_us / n,
        "python_cpu_us_per_call": main_us / n,
        "native_cpu_us_per_call": (total_us - main_us) / n,
        "errors": errors,
        "latency_ms_p50": None if p50 is None else p50 * 1e3,
        "latency_ms_p99": None if p99 is None else p99 * 1e3,
        "peak_rss_mb": peak_rss_mb(),
        "calls": calls,
        "in_flight": in_flight,
        "cpu_percent": 100.0 * (total_us / 1e6) / wall if wall > 0 else None,
        "wall_s": wall,
        "threads": end.threads,
    }
# ---- voice toolkit scenarios (resample-48k-16k, apm-aec): signals and spectra ----------

VOICE_RATE = 48000
VOICE_CHUNK = VOICE_RATE // 100  # 10 ms
ECHO_DELAY_MS = 50


def voice_tone(seconds: float) -> Any:
    """The resampler's input: a 1 kHz tone at -6 dBFS over white noise at -50 dBFS (int16)."""
    import numpy as np

    n = int(seconds * VOICE_RATE)
    t = np.arange(n) / VOICE_RATE
    x = 0.5 * 32767 * np.sin(2 * np.pi * 1000 * t)
    x += np.random.default_rng(7).standard_normal(n) * 32767 * 10 ** (-50 / 20)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def echo_scene(seconds: float) -> tuple[Any, Any, Any]:
    """The APM's input (int16 far, int16 near) and the echo in the near end (float).

    The far end talks (noise) 1 s and pauses 1 s; the near end hears it 50 ms later at half
    level, plus a 440 Hz tone from 0.5 s to 1.5 s of every 2 s.
    """
    import numpy as np

    n = int(seconds * VOICE_RATE)
    t = np.arange(n) / VOICE_RATE
    phase = t % 2.0
    noise = np.random.default_rng(1).standard_normal(n) * 0.1 * 32767 * (phase < 1.0)
    far = np.convolve(noise, np.ones(4) / 4, mode="same")
    delay = ECHO_DELAY_MS * VOICE_RATE // 1000
    echo = np.zeros(n)
    echo[delay:] = 0.5 * far[:-delay]
    tone = 0.1 * 32767 * np.sin(2 * np.pi * 440 * t) * ((phase >= 0.5) & (phase < 1.5))
    pcm = lambda x: np.clip(np.round(x), -32768, 32767).astype(np.int16)  # noqa: E731
    return pcm(far), pcm(echo + tone), echo


def echo_attenuation_db(out: Any, echo: Any) -> float:
    """Echo power over output power where the far end talks alone (0.1-0.5 s of each cycle),
    after the first cycle (convergence)."""
    import numpy as np

    cycles = len(out) // (2 * VOICE_RATE)
    mask = np.zeros(len(out), bool)
    for c in range(1, cycles):
        mask[int((2 * c + 0.1) * VOICE_RATE):int((2 * c + 0.5) * VOICE_RATE)] = True
    ratio = np.sum(echo[mask] ** 2) / max(float(np.sum(out[mask].astype(np.float64) ** 2)), 1e-9)
    return float(10 * math.log10(ratio))


def spectrum_db(samples: Any, rate: int, bands: int = 32) -> list[float]:
    """Mean power spectrum (1024-point Hann segments) in ``bands`` equal bands up to
    Nyquist, in dB: what the two sides' outputs are compared on."""
    import numpy as np

    x = np.asarray(samples, np.float64)
    segments = x[: len(x) // 1024 * 1024].reshape(-1, 1024) * np.hanning(1024)
    power = np.mean(np.abs(np.fft.rfft(segments, axis=1)) ** 2, axis=0)[1:]
    return [round(float(10 * math.log10(max(band.mean(), 1e-12))), 2)
            for band in np.array_split(power, bands)]


def voice_figures(start: CpuSample, end: CpuSample, frames: int, **extra: Any) -> dict[str, Any]:
    """The figures of a voice scenario: ``frames`` 10 ms input frames processed in the window."""
    res = figures(start=start, end=end, sent=frames, received=frames,
                  active_s=end.wall_s - start.wall_s, streams=1)
    res.update(extra)
    return res
# ---- room-* scenarios (issue 10): remote tracks from bench/room_publisher.py ----

ROOM_WARMUP_S = 1.0  # after every stream's first frame: the jitter buffers settle


def add_room_args(p: argparse.ArgumentParser) -> None:
    """The room scenarios' options (the server itself comes from the environment)."""
    p.add_argument("--room", default="", help="room-*: the room the publisher is in")


@dataclass
class RoomAudioLog:
    """Arrival times and kept samples (bench/_room_codes.py) of N remote audio streams, taken
    only while ``on``: the measured window. Kept samples are decoded after the window."""

    streams: int
    frames: int  # per stream, kept at most (the window's frames with a margin)
    on: bool = False
    arrivals: list[list[float]] = field(default_factory=list)
    kept: list[Any] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)  # frames before the window too

    def __post_init__(self) -> None:
        import numpy as np
        from _room_codes import KEPT

        self.arrivals = [[] for _ in range(self.streams)]
        self.kept = [np.zeros((self.frames, KEPT), np.int16) for _ in range(self.streams)]
        self.seen = [0] * self.streams

    def arrived(self, i: int, samples: Any) -> None:
        """One frame of stream ``i`` (its 48 kHz mono samples, any 1-D int16 array)."""
        self.seen[i] += 1
        if self.on:
            times = self.arrivals[i]
            k = len(times)
            times.append(time.perf_counter())
            if k < self.frames:
                self.kept[i][k] = samples[::4]

    def figures(self, nominal_s: float) -> dict[str, Any]:
        """received, gaps, decoded frames, and inter-arrival jitter (|interval - nominal|)."""
        from _room_codes import decode, gaps

        jitter: list[float] = []
        gap_count = decoded = 0
        for times, kept in zip(self.arrivals, self.kept):
            jitter += [abs(b - a - nominal_s) for a, b in zip(times, times[1:])]
            symbols = decode(kept[:min(len(times), self.frames)].ravel())
            gap_count += gaps(symbols)
            decoded += len(symbols)
        p50, p99 = percentile(jitter, 50), percentile(jitter, 99)
        return {"received": sum(len(t) for t in self.arrivals), "gaps": gap_count,
                "decoded": decoded,
                "jitter_ms_p50": None if p50 is None else p50 * 1e3,
                "jitter_ms_p99": None if p99 is None else p99 * 1e3}


@dataclass
class Window:
    """The measured window of a room run: CPU (whole process, main thread, per thread name)
    and run-queue wait per thread name, read when it opens and when it closes."""

    t0: float = 0.0
    t1: float = 0.0
    start: CpuSample | None = None
    end: CpuSample | None = None
    readings: list[dict[str, float]] = field(default_factory=list)  # cpu0, wait0, cpu1, wait1

    def open(self) -> None:
        """Start measuring."""
        self.readings = [cpu_by_thread(), cpu_by_thread("wait")]
        self.start, self.t0 = cpu_sample(), time.perf_counter()

    def close(self) -> None:
        """Stop measuring."""
        self.t1, self.end = time.perf_counter(), cpu_sample()
        self.readings += [cpu_by_thread(), cpu_by_thread("wait")]


def room_figures(window: Window, *, received: int, streams: int,
                 extra: dict[str, Any]) -> dict[str, Any]:
    """The figure dict of a room run: run.py adds ``sent`` and ``drops`` from the publisher's
    report. ``window`` is the measured [t0, t1) on perf_counter, the clock the publisher
    counts its frames by; ``threads_cpu_us_per_frame`` and ``threads_wait_ms`` (time spent
    runnable, waiting for a core: the host's load) are by thread name."""
    assert window.start is not None and window.end is not None
    cpu0, wait0, cpu1, wait1 = window.readings
    res = figures(start=window.start, end=window.end, sent=received, received=received,
                  active_s=window.t1 - window.t0, streams=streams)
    res.update(extra)
    res["threads_cpu_us_per_frame"] = thread_share(cpu0, cpu1, received)
    res["threads_wait_ms"] = thread_share(wait0, wait1, 1000)
    res["window"] = [window.t0, window.t1]
    res["drops"] = None  # sent - received, once run.py has the publisher's count
    return res


@dataclass
class RoomVideoLog:
    """Arrival times, frame numbers and sizes of one remote video stream, while ``on``."""

    on: bool = False
    seen: int = 0
    arrivals: list[float] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)

    def arrived(self, rgba: Any, width: int, height: int) -> None:
        """One RGBA picture (flat or shaped)."""
        self.seen += 1
        if self.on:
            from _room_codes import video_number

            self.arrivals.append(time.perf_counter())
            self.numbers.append(video_number(rgba, width, height))
            self.sizes.add((width, height))

    def figures(self, nominal_s: float) -> dict[str, Any]:
        """received, gaps in the frame numbers, jitter, the sizes seen."""
        from _room_codes import video_gaps

        times = self.arrivals
        jitter = [abs(b - a - nominal_s) for a, b in zip(times, times[1:])]
        p50, p99 = percentile(jitter, 50), percentile(jitter, 99)
        return {"received": len(times), "gaps": video_gaps(self.numbers),
                "sizes": sorted(f"{w}x{h}" for w, h in self.sizes),
                "jitter_ms_p50": None if p50 is None else p50 * 1e3,
                "jitter_ms_p99": None if p99 is None else p99 * 1e3}


def cpu_by_thread(what: str = "cpu") -> dict[str, float]:
    """Seconds per thread name (comm) of this process's live threads: CPU (``cpu``: where the
    time goes, native threads by what they do: tokio workers, libwebrtc's threads, ...) or
    time spent runnable but waiting for a core (``wait``: the host's load, from schedstat)."""
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            if what == "cpu":
                value = _stat_cpu_s(f"/proc/self/task/{tid}/stat")
            else:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    value = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
        name = "main (Python)" if tid == str(os.getpid()) else name
        out[name] = out.get(name, 0.0) + value
    return out


def thread_share(before: dict[str, float], after: dict[str, float],
                 frames: int) -> dict[str, float]:
    """CPU us per frame by thread name between two ``cpu_by_thread()`` readings, largest first
    (threads under 1 us per frame left out)."""
    per = {name: (after[name] - before.get(name, 0.0)) * 1e6 / max(frames, 1) for name in after}
    ranked = sorted(per.items(), key=lambda kv: -kv[1])
    return {name: round(us, 1) for name, us in ranked if us >= 1}
