"""Seeded fuzz of the media layer's public API, each batch of cases in a subprocess.

The native library aborts the whole process on some inputs, so a case never runs in the
process that judges it: batches of cases run in worker subprocesses. When a worker dies,
the case it had started is run alone; if that one survives (a native thread may abort
after its case returned), the batch's earlier cases are run one per subprocess, so the
report names the input that killed it. :func:`supported` is the oracle: written from the
measured support tables, not from rtc_trio's code, it says which cases must work and which
must be refused.

    python tests/fuzz_api.py [--seed N] [--cases N] [--budget SECONDS] [--jobs N]
    PYTHONPATH=CHECKOUT python tests/fuzz_api.py --matrix NAME

``--matrix`` measures a support table systematically (every case in a worker subprocess)
and prints each case with its outcome; NAME is one of convert, capture, capture-sizes,
audio-rates, audio-low, audio-combos, audio-big, audio-rule, audio-channels, bounds. Run it
against a checkout that does not refuse the values being measured (the README's "Supported values" has
the results for livekit 1.2.1).
A case is a JSON object; its values are plain JSON, except ``{"np": dtype, "v": x}``
for numpy scalars.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

Case = dict[str, Any]

TYPES = ["RGBA", "ABGR", "ARGB", "BGRA", "RGB24", "I420", "I420A", "I422", "I444", "I010", "NV12"]
WAIT_S = 5.0  # longest a case waits for a frame that should come
WORKER_TIMEOUT_S = 20.0  # per worker run, plus CASE_LIMIT_S per case
CASE_LIMIT_S = 3 * WAIT_S  # a case still running then is cancelled: it hung


# ---------------------------------------------------------------- values -------------

def np_value(dtype: str, value: Any) -> dict[str, Any]:
    return {"np": dtype, "v": value}


def decode(value: Any) -> Any:
    """A case's value as the call receives it (numpy scalars are tagged in JSON)."""
    if isinstance(value, dict) and set(value) == {"np", "v"}:
        import numpy as np

        return np.dtype(value["np"]).type(value["v"])
    return value


def show(case: Case) -> str:
    """The case as one line, for reports."""
    return json.dumps(case, separators=(",", ":"))


# ---------------------------------------------------------------- worker side --------

def _frame_bytes(kind: Any, width: int, height: int) -> int:
    from rtc_trio._video_frame import frame_size

    return frame_size(kind, width, height)


def _pattern(nbytes: int, seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)


def _video_frame(spec: dict[str, Any]) -> Any:
    """A VideoFrame from ``{"w", "h", "type"[, "nbytes"]}``; arguments go in as given."""
    import rtc_trio as rtc

    w, h, kind = decode(spec["w"]), decode(spec["h"]), _buffer_type(spec["type"])
    nbytes = spec.get("nbytes")
    if nbytes is None:
        try:  # the size the arguments ask for, if they make sense and it is not huge
            nbytes = _frame_bytes(rtc.VideoBufferType(kind), w, h)
        except (TypeError, ValueError):
            nbytes = 64
        if not 0 < nbytes <= 2**26:
            nbytes = 64
    return rtc.VideoFrame(w, h, kind, _pattern(int(nbytes), 7))


def _buffer_type(name: Any) -> Any:
    import rtc_trio as rtc

    name = decode(name)
    return getattr(rtc.VideoBufferType, name) if isinstance(name, str) and name in TYPES else name


async def _op_audio_frame(case: Case) -> str:
    import numpy as np
    import rtc_trio as rtc

    shape = tuple(case["shape"])
    rtc.AudioFrame(np.zeros(shape, np.int16), decode(case["rate"]))
    return "ok"


async def _op_video_frame(case: Case) -> str:
    _video_frame(case)
    return "ok"


async def _op_convert(case: Case) -> str:
    frame = _video_frame(case)
    out = frame.convert(_buffer_type(case["dst"]), flip_y=decode(case.get("flip", False)))
    return f"ok {out.width}x{out.height} {out.type.name}"


async def _op_video_source(case: Case) -> str:
    import rtc_trio as rtc

    async with rtc.open_video_source(decode(case["w"]), decode(case["h"])):
        pass
    return "ok"


async def _op_video(case: Case) -> str:
    """source (w, h) -> track [-> stream (format, capacity)] <- capture; wait for the frame."""
    import trio
    import rtc_trio as rtc

    src, stream_args, cap = case["source"], case.get("stream"), case["capture"]

    def capture(frame: Any) -> None:
        for name, value in cap.get("set", {}).items():  # a frame changed after it was made
            setattr(frame, name, decode(value))
        source.capture_frame(frame, rotation=decode(cap.get("rotation", 0)),
                             timestamp_us=decode(cap.get("timestamp_us", 0)))

    async with rtc.open_video_source(decode(src["w"]), decode(src["h"])) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            if stream_args is None:
                capture(_video_frame(cap))
                return "ok"
            fmt = _buffer_type(stream_args["format"])
            kwargs = {"format": fmt}
            if "capacity" in stream_args:
                kwargs["capacity"] = decode(stream_args["capacity"])
            async with rtc.open_video_stream(track, **kwargs) as stream:
                frame = _video_frame(cap)
                capture(frame)
                # a local track's frames arrive cropped to multiples of 4, not rotated (measured)
                want = {(frame.width & ~3, frame.height & ~3)}
                others = set()
                with trio.move_on_after(case.get("wait", WAIT_S)):
                    while True:
                        got = None
                        with trio.move_on_after(0.1):
                            got = await stream.receive()
                        if got is None:  # a picture sent before the stream was wired is lost
                            capture(frame)
                            continue
                        if (got.width, got.height) in want:
                            then = case.get("then")
                            if then is not None:
                                got = got.convert(_buffer_type(then))
                            return f"ok {got.width}x{got.height} {got.type.name}"
                        others.add(f"{got.width}x{got.height}")
                return "noframe" + (f" (got {', '.join(sorted(others))})" if others else "")


async def _op_audio(case: Case) -> str:
    """source [-> track -> stream] <- captures; wait for a frame if a stream is open."""
    import numpy as np
    import trio
    import rtc_trio as rtc

    src, stream_args, cap = case["source"], case.get("stream"), case.get("capture")
    async with rtc.open_audio_source(
        decode(src["rate"]), decode(src["channels"]), queue_size_ms=decode(src["queue_ms"])
    ) as source:
        with rtc.LocalAudioTrack.create("mic", source) as track:
            kwargs = {k: decode(v) for k, v in (stream_args or {}).items()}
            names = {"rate": "sample_rate", "channels": "num_channels", "frame_ms": "frame_size_ms"}
            kwargs = {names.get(k, k): v for k, v in kwargs.items()}

            async def capture() -> Any:
                if cap is None:
                    return None
                rate = decode(cap.get("rate", src["rate"]))
                channels = int(decode(cap.get("channels", src["channels"])))
                samples = int(decode(cap["samples"]))
                data = (np.arange(samples * channels) % 2000 - 1000).astype(np.int16)
                frame = rtc.AudioFrame(data.reshape(samples, channels), rate)
                count = int(cap.get("count", 1))
                frame_ms = kwargs.get("frame_size_ms")
                frame_ms = frame_ms if isinstance(frame_ms, int) and 0 < frame_ms <= 1000 else 10
                if stream_args is not None and _int(rate) is not None and _int(rate) > 0:  # type: ignore[operator]
                    # enough for one received frame, and the resampler's delay
                    needed = (2 * frame_ms + 30) * _int(rate) // 1000  # type: ignore[operator]
                    count = min(max(count, -(-needed // samples)), 2000)
                for _ in range(count):
                    await source.capture_frame(frame)
                return frame

            if stream_args is None:
                await capture()
                return "ok"
            async with rtc.open_audio_stream(track, **kwargs) as stream:
                frame = await capture()
                if frame is None:
                    return "ok"
                with trio.move_on_after(case.get("wait", WAIT_S)):
                    while True:
                        with trio.move_on_after(0.05):
                            got = await stream.receive()
                            return f"ok {got.samples_per_channel}x{got.num_channels}@{got.sample_rate}"
                        await source.capture_frame(frame)  # audio sent before the stream was wired is lost
                return "noframe"


async def _op_abort(case: Case) -> str:
    """Kill the worker as a native abort does (now, from a thread ``after`` seconds, or
    ``at_exit``: when the interpreter exits)."""
    if case.get("at_exit"):
        import atexit

        atexit.register(os.abort)
        return "ok"
    if "after" in case:
        threading.Timer(case["after"], os.abort).start()
        return "ok"
    os.abort()


async def _op_sleep(case: Case) -> str:
    import trio

    await trio.sleep(case["seconds"])
    return "ok"


OPS: dict[str, Callable[[Case], Any]] = {
    "audio_frame": _op_audio_frame,
    "video_frame": _op_video_frame,
    "convert": _op_convert,
    "video_source": _op_video_source,
    "video": _op_video,
    "audio": _op_audio,
    "abort": _op_abort,  # these two test the driver itself
    "sleep": _op_sleep,
}


def _settled_leak(baseline: int) -> int:
    import rtc_trio as rtc

    if rtc.live_handles() <= baseline:  # the common case: released by reference counting
        return 0
    deadline = time.monotonic() + 2.0
    while True:
        gc.collect()
        leaked = rtc.live_handles() - baseline
        if leaked <= 0 or time.monotonic() > deadline:
            return leaked
        time.sleep(0.02)


def run_one(case: Case) -> str:
    """Run ``case`` here and describe what happened (never raises)."""
    import trio
    import rtc_trio as rtc

    baseline = rtc.live_handles()

    async def bounded() -> str:
        with trio.fail_after(CASE_LIMIT_S):
            result: str = await OPS[case["op"]](case)
            return result

    try:
        outcome = trio.run(bounded)
    except Exception as error:  # the outcome is what is being measured
        line = str(error).splitlines()[0] if str(error) else ""
        outcome = f"{type(error).__name__}: {line}"[:300]
        if not isinstance(error, (TypeError, ValueError, rtc.RtcError)):
            outcome += " | " + traceback.format_exc().splitlines()[-3].strip()[:200]
    leaked = _settled_leak(baseline)
    if case.get("rss"):
        import resource

        outcome += f" (peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)"
    return outcome + (f" [leaked {leaked} handle(s)]" if leaked > 0 else "")


def worker() -> None:
    """Run the JSON list of cases on stdin; report each as it starts and ends."""
    import logging

    logging.getLogger("rtc_trio").setLevel(logging.CRITICAL)  # the native side's ERROR records
    cases = json.load(sys.stdin)
    for index, case in enumerate(cases):
        print(f"START {index}", flush=True)
        print(f"DONE {index} {json.dumps(run_one(case))}", flush=True)


# ---------------------------------------------------------------- driver side --------

@dataclass
class Result:
    case: Case
    outcome: str  # "ok ...", "ValueError: ...", ..., or "ABORT: reason"

    @property
    def aborted(self) -> bool:
        return self.outcome.startswith("ABORT")


_MESSAGES = re.compile(r"Check failed|panicked at|assertion|memory allocation of|unreachable")
_OTHER_MARKERS = re.compile(r"Fatal error|fatal|Segmentation|Aborted|terminate called")


def abort_reason(returncode: int, stderr: str) -> str:
    """One line saying how a worker died: the native message if it printed one."""
    lines = [line.strip(" #") for line in stderr.splitlines() if line.strip(" #")]
    for pattern in (_MESSAGES, _OTHER_MARKERS):
        for i, line in enumerate(lines):
            if pattern.search(line) and not line.startswith(("note:", "stack backtrace")):
                detail = line
                if line.endswith(":") and i + 1 < len(lines):
                    detail += " " + lines[i + 1]  # a Rust panic puts its message on the next line
                detail = re.sub(r"thread '[^']*' \(\d+\) ", "", detail)
                where = [x for x in lines[:i] if x.startswith("Fatal error in:")]
                if where:  # libwebrtc names the file and line before the check
                    detail = where[-1].replace("Fatal error in: ", "") + ": " + detail
                return f"ABORT (rc {returncode}): {detail[:300]}"
    tail = lines[-1][:200] if lines else "no output"
    return f"ABORT (rc {returncode}): {tail}"


def _spawn(cases: list[Case]) -> tuple[dict[int, str], int | None, int, str]:
    """Run ``cases`` in one worker: (outcomes by index, index started last, rc, stderr)."""
    timeout = WORKER_TIMEOUT_S + CASE_LIMIT_S * len(cases)
    try:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker"],
            input=json.dumps(cases), capture_output=True, text=True, timeout=timeout,
        )
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as expired:
        stdout = _text(expired.stdout)
        stderr = _text(expired.stderr) + f"\nworker timed out after {timeout:.0f} s"
        rc = -9
    done: dict[int, str] = {}
    started: int | None = None
    for line in stdout.splitlines():
        if line.startswith("START "):
            started = int(line.split()[1])
        elif line.startswith("DONE "):
            _, index, outcome = line.split(" ", 2)
            done[int(index)] = json.loads(outcome)
    return done, started, rc, stderr


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def run_alone(case: Case) -> Result:
    done, _, rc, stderr = _spawn([case])
    if rc == 0 and 0 in done:
        return Result(case, done[0])
    return Result(case, abort_reason(rc, stderr))


def run_batch(cases: list[Case]) -> list[Result]:
    """Run ``cases`` in one worker; if it dies, name the culprit by running cases alone."""
    results: list[Result] = []
    while cases:
        done, started, rc, stderr = _spawn(cases)
        if len(done) == len(cases):
            results += [Result(c, done[i]) for i, c in enumerate(cases)]
            if rc != 0:  # every case returned: the worker died at interpreter exit
                results[-1] = Result(cases[-1], abort_reason(rc, stderr) + " (at exit, after the"
                                     f" last of {len(cases)} cases)")
            return results
        suspect = started if started is not None else 0
        finished = [Result(c, done[i]) for i, c in enumerate(cases[:suspect]) if i in done]
        alone = run_alone(cases[suspect])
        if not alone.aborted:
            # a late abort from an earlier case of the batch: re-run each of them alone
            finished = [run_alone(c) for c in cases[:suspect]]
            if not any(r.aborted for r in finished):
                alone = Result(cases[suspect], abort_reason(rc, stderr) + " (batch only; not alone)")
        results += finished + [alone]
        cases = cases[suspect + 1:]
    return results


def run_cases(
    cases: list[Case], *, jobs: int = 2, batch: int = 40, budget: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Result], int]:
    """Run every case (batched, ``jobs`` workers at once); returns results and cases skipped
    because ``budget`` seconds ran out before their batch started."""
    start = time.monotonic()
    batches = [cases[i:i + batch] for i in range(0, len(cases), batch)]
    lock = threading.Lock()
    skipped = 0
    finished = 0

    def one(part: list[Case]) -> list[Result]:
        nonlocal skipped, finished
        if budget is not None and time.monotonic() - start > budget:
            with lock:
                skipped += len(part)
            return []
        out = run_batch(part)
        with lock:
            finished += len(part)
            if progress:
                progress(finished, len(cases))
        return out

    with ThreadPoolExecutor(jobs) as pool:
        results = [r for part in pool.map(one, batches) for r in part]
    return results, skipped


# ---------------------------------------------------------------- the fuzz -----------
# What the media layer supports, written down independently of rtc_trio's code from the
# measurements (the README's "Supported values"): the oracle says which cases must work, which be refused.

CONVERSIONS = {
    "RGBA": ["BGRA", "I420"], "ABGR": ["RGBA", "BGRA", "I420"], "ARGB": ["I420"],
    "BGRA": ["RGBA", "I420"], "RGB24": ["I420"],
    "I420": ["RGBA", "ABGR", "ARGB", "BGRA", "RGB24"], "I420A": ["I420"],
    "I422": ["RGBA", "ABGR", "ARGB", "I420"], "I444": ["RGBA", "BGRA", "I420"],
    "I010": ["RGBA", "BGRA", "I420"], "NV12": ["RGBA", "BGRA", "I420"],
}
STREAM_FORMATS = ["RGBA", "ABGR", "ARGB", "BGRA", "RGB24", "I420"]


def _int(value: Any) -> int | None:
    """The integer a value passes for (ints and numpy integers, not bools), else None."""
    value = decode(value)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        return None
    return int(value)


def _audio_format_ok(rate: Any, channels: Any) -> bool:
    r, c = _int(rate), _int(channels)
    return r is not None and c is not None and 8000 <= r <= 384000 and 1 <= c <= 16 and r * c <= 768000


def _size_ok(w: Any, h: Any, least: int = 1) -> bool:
    x, y = _int(w), _int(h)
    return x is not None and y is not None and least <= x <= 16384 and least <= y <= 16384 and x * y <= 4096**2


def _type_name(value: Any) -> str | None:
    value = decode(value)
    if isinstance(value, str) and value in TYPES:
        return value
    index = _int(value)
    return TYPES[index] if index is not None and 0 <= index < len(TYPES) else None


def _frame_ok(spec: dict[str, Any], least: int = 1) -> bool:
    return (_size_ok(spec["w"], spec["h"], least) and _type_name(spec["type"]) is not None
            and "nbytes" not in spec)


def supported(case: Case) -> bool:
    """Whether ``case`` asks only for supported values: it must then work, else be refused."""
    op = case["op"]
    if op == "audio_frame":
        shape = case["shape"]
        return (len(shape) in (1, 2) and shape[0] > 0 and (len(shape) == 1 or 1 <= shape[1] <= 16)
                and _int(case["rate"]) is not None and 8000 <= _int(case["rate"]) <= 384000)  # type: ignore[operator]
    if op == "video_frame":
        return _frame_ok(case)
    if op == "convert":
        src, dst = _type_name(case["type"]), _type_name(case["dst"])
        return (_frame_ok(case) and dst is not None and isinstance(decode(case["flip"]), bool)
                and (dst == src or dst in CONVERSIONS[src or ""]))
    if op == "video_source":
        return _size_ok(case["w"], case["h"], 4)
    if op == "video":
        cap, stream = case["capture"], case.get("stream")
        ok = (_size_ok(case["source"]["w"], case["source"]["h"], 4) and _frame_ok(cap, 4)
              and decode(cap.get("rotation", 0)) in (0, 90, 180, 270)
              and not isinstance(decode(cap.get("rotation", 0)), (bool, float)))
        if stream is None or not ok:
            return ok
        fmt = _type_name(stream["format"])
        capacity = _int(stream.get("capacity", 4))
        then = case.get("then")
        return (fmt in STREAM_FORMATS and capacity is not None and 1 <= capacity <= 30
                and (then is None or then == fmt or then in CONVERSIONS[fmt or ""]))
    if op == "audio":
        src, stream, cap = case["source"], case.get("stream"), case.get("capture")
        queue = _int(src["queue_ms"])
        rate = _int(src["rate"])
        ok = (_audio_format_ok(src["rate"], src["channels"]) and queue is not None
              and 0 <= queue <= 60000 and queue % 10 == 0 and (queue > 0 or rate % 100 == 0))  # type: ignore[operator]
        if ok and stream is not None:
            srate, sch = stream.get("rate", 48000), stream.get("channels", 1)
            frame_ms = stream.get("frame_ms")
            capacity = _int(stream.get("capacity", 100))
            ok = _audio_format_ok(srate, sch) and (frame_ms is None or (
                _int(frame_ms) is not None and 1 <= _int(frame_ms) <= 10000))  # type: ignore[operator]
            if ok:
                frame_bytes = _int(srate) * max(_int(frame_ms) or 10, 10) // 1000 * _int(sch) * 2  # type: ignore[operator]
                ok = capacity is not None and 1 <= capacity <= 128 * 2**20 // frame_bytes
        if ok and cap is not None:
            ok = (decode(cap.get("rate", src["rate"])) == decode(src["rate"])
                  and cap["channels"] == decode(src["channels"])
                  and (queue != 0 or cap["samples"] * 100 == rate))
        return ok
    raise ValueError(op)


def _pick(rng: random.Random, valid: list[Any], odd: list[Any], p_odd: float = 0.06) -> Any:
    return rng.choice(odd) if rng.random() < p_odd else rng.choice(valid)


WRONG = [True, 2.5, "3", None]  # wrong types
HUGE = [2**31, 2**32, 2**63]
RATES = [8000, 16000, 24000, 32000, 48000, 48000, 44100, 22050, 11025]
RATES_ODD = [1, 8, 99, 100, 999, 1500, 4000, 7999, 384000, 384001, 96000, 192000, 0, -1,
             np_value("int32", 16000)] + HUGE + WRONG
CHANNELS = [1, 1, 1, 2, 2, 4, 8]
CHANNELS_ODD = [0, -1, 3, 16, 17, 24, 32, 33, np_value("int64", 2)] + HUGE + WRONG
SIZES = [4, 5, 7, 8, 15, 16, 17, 33, 64, 100, 160, 240, 320]
SIZES_ODD = [0, -1, 1, 2, 3, 16385, 2**31, 2**32 + 16, np_value("int32", 16),
             np_value("uint64", 9), 16.0] + WRONG
CAPACITY_ODD = [0, -1, 10**6, 139_810, 139_811, 30, 31, np_value("int64", 8)] + HUGE + WRONG


def _gen_audio(rng: random.Random) -> Case:
    rate = _pick(rng, RATES, RATES_ODD, 0.08)
    channels = _pick(rng, CHANNELS, CHANNELS_ODD)
    queue_ms = _pick(rng, [0, 0, 10, 100, 1000], [5, -10, 15, 60_000, 60_010, 10**9, True, 20.0,
                                                  np_value("int32", 100)])
    if decode(rate) in (22050, 11025) and rng.random() < 0.9:
        queue_ms = 100  # these rates need a queue
    case: Case = {"op": "audio", "source": {"rate": rate, "channels": channels, "queue_ms": queue_ms}}
    r, c = _int(rate), _int(channels)
    per_10ms = r // 100 if r is not None and 100 <= r <= 384000 else 480
    samples = _pick(rng, [per_10ms], [per_10ms * 2, per_10ms + 1, 1, 480], 0.1)
    if rng.random() < 0.85:
        stream: dict[str, Any] = {}
        if rng.random() < 0.8:
            stream["rate"] = _pick(rng, RATES, RATES_ODD, 0.08)
        if rng.random() < 0.6:
            stream["channels"] = _pick(rng, CHANNELS, CHANNELS_ODD)
        if rng.random() < 0.3:
            stream["frame_ms"] = _pick(rng, [10, 20, 40], [0, 1, 5, 10_001, 60_000, -1] + HUGE + WRONG)
        if rng.random() < 0.3:
            stream["capacity"] = _pick(rng, [1, 2, 8, 100], CAPACITY_ODD)
        case["stream"] = stream
    if rng.random() < 0.9:
        valid_c = c if c is not None and 1 <= c <= 16 else 1
        case["capture"] = {"samples": samples, "channels": valid_c, "count": rng.choice([1, 3])}
        if rng.random() < 0.03:
            case["capture"]["rate"] = rng.choice(RATES)
    return case


def _gen_frame(rng: random.Random, sizes: list[Any], p_odd: float = 0.04) -> dict[str, Any]:
    return {"w": _pick(rng, sizes, SIZES_ODD, p_odd), "h": _pick(rng, sizes, SIZES_ODD, p_odd),
            "type": _pick(rng, TYPES, [11, -1, "RGBA ", 3.0, None, np_value("int64", 5)], 0.03)}


def _gen_video(rng: random.Random) -> Case:
    roll = rng.random()
    if roll < 0.1:
        case: Case = {"op": "video_frame", **_gen_frame(rng, [1, 2, 3] + SIZES)}
        if rng.random() < 0.1:
            case["nbytes"] = rng.choice([0, 1, 3, 100, 4 * 16 * 16])
        return case
    if roll < 0.45:
        case = {"op": "convert", **_gen_frame(rng, [1, 2, 3] + SIZES)}
        src = _type_name(case["type"]) or "RGBA"
        case["dst"] = _pick(rng, [src] + CONVERSIONS[src] * 3, TYPES + [11, -2, "I420", None], 0.25)
        case["flip"] = _pick(rng, [False, True], [1, 0, "yes", None], 0.03)
        return case
    if roll < 0.5:
        return {"op": "video_source", "w": _pick(rng, SIZES, SIZES_ODD, 0.2),
                "h": _pick(rng, SIZES, SIZES_ODD, 0.2)}
    cap = _gen_frame(rng, SIZES[:9], 0.04)
    if rng.random() < 0.15:
        cap["rotation"] = _pick(rng, [0, 90, 180, 270], [45, -90, 360, None, "90", True], 0.3)
    source = {"w": _pick(rng, SIZES[:9], SIZES_ODD, 0.04), "h": _pick(rng, SIZES[:9], SIZES_ODD, 0.04)}
    case = {"op": "video", "source": source, "capture": cap}
    if rng.random() < 0.9:
        fmt = _pick(rng, STREAM_FORMATS, TYPES[6:] + [11, -1, None], 0.1)
        stream: dict[str, Any] = {"format": fmt}
        if rng.random() < 0.2:
            stream["capacity"] = _pick(rng, [1, 2, 4, 16, 30], CAPACITY_ODD, 0.3)
        case["stream"] = stream
        if rng.random() < 0.25:
            name = _type_name(fmt) or "RGBA"
            case["then"] = _pick(rng, [name] + CONVERSIONS[name], TYPES, 0.2)
    return case


def generate(seed: int, count: int) -> list[Case]:
    """``count`` cases from ``seed``: mostly supported values, some boundary and wrong ones."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.04:
            shape = _pick(rng, [[480], [480, 2], [1, 1], [441, 16]],
                          [[0], [480, 0], [2, 2, 2], [480, 17]], 0.3)
            cases.append({"op": "audio_frame", "shape": shape, "rate": _pick(rng, RATES, RATES_ODD, 0.3)})
        elif roll < 0.40:
            cases.append(_gen_audio(rng))
        else:
            cases.append(_gen_video(rng))
    return cases


def judge(result: Result) -> str | None:
    """Why ``result`` is a failure, or None: a supported case works, any other is refused."""
    if result.aborted:
        return "the process aborted"
    if "leaked" in result.outcome:
        return "a native handle leaked"
    if supported(result.case):
        if result.outcome.startswith("noframe"):
            return "a stream it opened delivered nothing"
        if not result.outcome.startswith("ok"):
            return "a supported case failed"
    elif not result.outcome.startswith(("ValueError:", "TypeError:")):
        return "an unsupported case was not refused"
    return None


def fuzz(seed: int, count: int, jobs: int, budget: float | None, batch: int = 40) -> int:
    cases = generate(seed, count)
    started = time.monotonic()
    results, skipped = run_cases(cases, jobs=jobs, batch=batch, budget=budget)
    elapsed = time.monotonic() - started
    failures = [(r, why) for r in results if (why := judge(r)) is not None]
    kinds = collections.Counter(r.outcome.split(":")[0].split(" ")[0] for r in results)
    valid = sum(supported(r.case) for r in results)
    print(f"fuzz seed={seed}: {len(results)} cases in {elapsed:.1f} s"
          f" ({skipped} skipped: time budget), {valid} of them supported; outcomes {dict(kinds)}")
    for result, why in failures:
        print(f"FAIL ({why}): {show(result.case)}\n    -> {result.outcome}")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


# ---------------------------------------------------------------- matrices -----------

def matrix_cases(name: str) -> list[Case]:
    """The systematic measurements behind the README's "Supported values"."""
    sizes = [(16, 16), (17, 3), (3, 17), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (7, 1),
             (1, 7), (6, 2), (2, 6), (8, 8)]
    if name == "convert":
        return [{"op": "convert", "w": w, "h": h, "type": src, "dst": dst, "flip": flip}
                for src in TYPES for dst in TYPES for flip in (False, True) for w, h in sizes]
    if name == "capture":
        return [{"op": "video", "source": {"w": w, "h": h}, "capture": {"w": w, "h": h, "type": t},
                 "stream": {"format": f}, "wait": 1.5}
                for t in TYPES for f in TYPES for w, h in [(16, 16), (17, 9), (8, 8)]]
    if name == "capture-sizes":
        edge = list(range(1, 9)) + [9, 15, 16, 17, 31, 33]
        cases = [{"op": "video", "source": {"w": 64, "h": 64}, "capture": {"w": w, "h": h, "type": t},
                  "stream": {"format": t}, "wait": 1.5}
                 for t in ["RGBA", "I420"] for w in edge for h in edge]
        cases += [{"op": "video", "source": {"w": w, "h": h},
                   "capture": {"w": 64, "h": 64, "type": "RGBA"}, "stream": {"format": "RGBA"},
                   "wait": 1.5} for w in edge[:10] for h in edge[:10]]
        return cases
    if name == "audio-rates":
        rates = [1, 8, 99, 100, 999, 1000, 2000, 4000, 7999, 8000, 8001, 11025, 12000, 16000,
                 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000, 176400, 192000,
                 384000]
        cases = []
        for rate in rates:
            per = max(rate // 100, 1)
            for queue in (0, 100):
                cases.append({"op": "audio", "source": {"rate": rate, "channels": 1, "queue_ms": queue},
                              "capture": {"samples": per, "count": 3}})
                cases.append({"op": "audio", "source": {"rate": rate, "channels": 1, "queue_ms": queue},
                              "stream": {"rate": rate, "channels": 1},
                              "capture": {"samples": per, "count": 3}, "wait": 2})
            cases.append({"op": "audio", "source": {"rate": 48000, "channels": 1, "queue_ms": 0},
                          "stream": {"rate": rate, "channels": 1},
                          "capture": {"samples": 480, "count": 3}, "wait": 2})
        return cases
    if name == "audio-combos":
        rates = [100, 999, 1000, 4000, 7999, 8000, 8001, 11025, 16000, 22050, 44100, 48000,
                 96000, 192000, 384000]
        return [{"op": "audio", "source": {"rate": a, "channels": 1, "queue_ms": 100},
                 "stream": {"rate": b, "channels": 1},
                 "capture": {"samples": max(a // 100, 1), "count": 3}, "wait": 2}
                for a in rates for b in rates]
    if name == "audio-low":
        cases = [{"op": "audio", "source": {"rate": a, "channels": c, "queue_ms": 100},
                  "stream": {"rate": b, "channels": c},
                  "capture": {"samples": max(a // 100, 1), "count": 3}, "wait": 2}
                 for a in [1000, 1500, 2000, 2500, 2900, 3000, 3100, 3199, 3200, 3300, 3500, 3999,
                           4000, 4001, 5000, 6000, 7000]
                 for b in [8000, 44100, 48000] for c in [1, 2]]
        cases += [{"op": "audio", "source": {"rate": a, "channels": 1, "queue_ms": 0},
                   "stream": {"rate": b, "channels": 1},
                   "capture": {"samples": a // 100, "count": 3}, "wait": 2}
                  for a in [8000, 48000] for b in [10, 16, 32, 50, 64, 80, 90, 99, 100, 101, 150]]
        return cases
    if name == "bounds":
        def audio(rate: int, ch: int, queue: int, srate: int, sch: int, samples: int,
                  **stream: Any) -> Case:
            return {"op": "audio", "source": {"rate": rate, "channels": ch, "queue_ms": queue},
                    "stream": {"rate": srate, "channels": sch, **stream},
                    "capture": {"samples": samples, "count": 3}, "wait": 5, "rss": True}

        def video(w: int, h: int, kind: str = "RGBA", fmt: str = "RGBA", **stream: Any) -> Case:
            return {"op": "video", "source": {"w": w, "h": h},
                    "capture": {"w": w, "h": h, "type": kind},
                    "stream": {"format": fmt, **stream}, "wait": 10, "rss": True}

        cases = [
            {"op": "audio", "source": {"rate": 48000, "channels": 1, "queue_ms": 0}, "rss": True},
            audio(384000, 32, 0, 384000, 32, 3840), audio(384000, 32, 100, 8000, 1, 3840),
            audio(8000, 32, 100, 384000, 32, 80), audio(8000, 1, 0, 384000, 2, 80),
            audio(48000, 1, 0, 48000, 1, 480, frame_ms=1), audio(48000, 1, 0, 48000, 1, 480, frame_ms=10_000),
            audio(384000, 32, 0, 384000, 32, 3840, frame_ms=1000),
            audio(48000, 1, 100, 48000, 1, 48000), audio(48000, 1, 10, 48000, 1, 48000 * 5),
            audio(48000, 1, 60_000, 48000, 1, 4800), audio(384000, 32, 60_000, 48000, 1, 3840),
            audio(48000, 1, 0, 48000, 1, 480, capacity=10**6),
            audio(48000, 1, 0, 48000, 1, 480, capacity=10**7),
            audio(48000, 1, 0, 48000, 1, 480, capacity=2**31 - 1),
            video(16384, 16), video(16, 16384), video(16384, 16, "I420", "I420"),
            video(4096, 4096), video(8192, 4320), video(8192, 8192, "I420", "I420"),
            video(320, 240, capacity=10**6), video(320, 240, capacity=2**31 - 1),
        ]
        return cases
    if name == "audio-big":
        return [{"op": "audio", "source": {"rate": a, "channels": c, "queue_ms": q},
                 "stream": {"rate": b, "channels": d},
                 "capture": {"samples": a // 100, "count": 3}, "wait": 2}
                for a in [8000, 48000, 384000] for b in [48000, 96000, 192000, 384000]
                for c in [1, 2, 8, 32] for d in [1, 2, 8, 32] for q in [0] if a != b or c != d]
    if name == "audio-rule":
        formats = [(8000, 1), (8000, 16), (11025, 16), (16000, 16), (22050, 16), (44100, 16),
                   (48000, 16), (48000, 1), (48000, 2), (96000, 8), (192000, 4), (384000, 2),
                   (384000, 1), (12345, 16)]
        cases = [{"op": "audio", "source": {"rate": a, "channels": c, "queue_ms": 0 if a % 100 == 0 else 100},
                  "stream": {"rate": b, "channels": d},
                  "capture": {"samples": a // 100, "count": 3}, "wait": 2}
                 for a, c in formats for b, d in formats]
        cases += [{"op": "audio", "source": {"rate": a, "channels": c, "queue_ms": 0},
                   "stream": {"rate": b, "channels": d, "frame_ms": f},
                   "capture": {"samples": a // 100, "count": n}, "wait": 5}
                  for a, c, b, d, f, n in [(48000, 1, 48000, 1, 10_000, 1001), (384000, 2, 384000, 2, 10_000, 1001),
                                           (48000, 1, 44100, 1, 7, 3), (48000, 1, 11025, 1, 1, 3),
                                           (48000, 2, 22050, 2, 3, 3), (8000, 1, 8000, 1, 1, 3)]]
        return cases
    if name == "audio-channels":
        cases = [{"op": "audio", "source": {"rate": 48000, "channels": a, "queue_ms": 0},
                  "stream": {"rate": 48000, "channels": b},
                  "capture": {"samples": 480, "count": 3}, "wait": 2}
                 for a in [1, 2, 3, 4, 5, 6, 8, 16, 32] for b in [1, 2, 3, 4, 6, 8, 16, 32]]
        cases += [{"op": "audio", "source": {"rate": a, "channels": 2, "queue_ms": 100},
                   "stream": {"rate": b, "channels": c},
                   "capture": {"samples": a // 100, "count": 3}, "wait": 2}
                  for a in [8000, 44100, 48000] for b in [8000, 16000, 44100, 48000] for c in [1, 2, 8]]
        return cases
    raise SystemExit(f"unknown matrix {name!r}")


def matrix(name: str, jobs: int) -> None:
    cases = matrix_cases(name)
    started = time.monotonic()
    results, _ = run_cases(cases, jobs=jobs, batch=1 if name == "bounds" else 30,
                           progress=lambda done, total: print(f"  {done}/{total}", file=sys.stderr))
    print(f"# matrix {name}: {len(results)} cases in {time.monotonic() - started:.0f} s")
    for result in results:
        print(f"{show(result.case)}\t{result.outcome}")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--budget", type=float, default=None, help="seconds; later batches are skipped")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--matrix")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.worker:
        worker()
        return 0
    if args.matrix:
        matrix(args.matrix, args.jobs)
        return 0
    return fuzz(args.seed, args.cases, args.jobs, args.budget)


if __name__ == "__main__":
    sys.exit(main())
