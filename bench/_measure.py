"""Measurement helpers shared by both bench sides: CLI params, CPU per thread, RSS, latency.

Nothing here imports either RTC library, so both side scripts measure the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
    p.add_argument("--deadline", type=float, default=60.0,
                   help="the whole workload is abandoned (error) after this many seconds")
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
