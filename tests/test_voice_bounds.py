"""Every bound of the resampler and the audio processing module: the value at it works, the
value past it is refused before anything native happens.

Past several of these bounds the native side aborts the process (0 channels, a 479-sample
frame), so the cases run in worker subprocesses (this file run with ``--worker``): an abort
is a failure naming the case, not a dead test run. All cases run in one go (a module
fixture); a worker that dies is restarted after the case it was running.

    PYTHONPATH=CHECKOUT python tests/test_voice_bounds.py --matrix

measures the native side itself (raw requests, no rtc_trio checks), each case in a
subprocess, and prints each case with its outcome: the README's "Supported values" rows for
the resampler and the APM come from it (livekit 1.2.1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
OK, VALUE, TYPE = "ok", "ValueError", "TypeError"

SETUP = """
import numpy as np, rtc_trio as rtc
Q = rtc.AudioResamplerQuality
def frame(samples, rate=48000, channels=1):
    shape = (samples,) if channels == 1 else (samples, channels)
    return rtc.AudioFrame(np.zeros(shape, np.int16), rate)
def push(inr, outr, samples, channels=1, quality=Q.MEDIUM, frame_rate=None, frame_channels=None):
    with rtc.AudioResampler(inr, outr, num_channels=channels, quality=quality) as r:
        out = r.push(frame(samples, frame_rate or inr, frame_channels or channels))
        out += r.flush()
        assert sum(f.samples_per_channel for f in out) > 0
def apm(samples, rate=48000, channels=1, delay=None, data=None):
    with rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True,
                                   high_pass_filter=True, auto_gain_control=True) as m:
        if delay is not None:
            m.set_stream_delay_ms(delay)
        f = frame(samples, rate, channels)
        if data is not None:
            f.data = data
        m.process_reverse_stream(f)
        m.process_stream(f)
def misaligned():
    return np.frombuffer(bytearray(962), np.int16, count=480, offset=1)
"""

BOUNDS: list[tuple[str, str, str, str]] = [
    # (test id, code run in the worker, expected outcome, words the refusal names)
    # -- resampler rates: the native side creates a resampler from 0 Hz, then fails every push
    ("resampler-rate-8000", "push(8000, 48000, 80)", OK, ""),
    ("resampler-rate-7999", "push(7999, 48000, 80)", VALUE, "input_rate"),
    ("resampler-rate-384000", "push(384000, 8000, 3840)", OK, ""),
    ("resampler-rate-384001", "push(384001, 8000, 3840)", VALUE, "input_rate"),
    ("resampler-rate-0", "push(0, 16000, 480)", VALUE, "input_rate"),
    ("resampler-rate-negative", "push(-48000, 16000, 480)", VALUE, "input_rate"),
    ("resampler-output-rate-0", "push(48000, 0, 480)", VALUE, "output_rate"),
    ("resampler-output-rate-384001", "push(48000, 384001, 480)", VALUE, "output_rate"),
    ("resampler-rate-float", "push(48000.0, 16000, 480)", TYPE, "input_rate"),
    ("resampler-rate-bool", "push(True, 16000, 480)", TYPE, "input_rate"),
    ("resampler-rate-numpy", "push(np.int32(48000), np.int64(16000), 480)", OK, ""),
    # -- channels: 0 panics the native side (abort); 17 and up make no AudioFrame
    ("resampler-channels-1", "push(48000, 16000, 480, 1)", OK, ""),
    ("resampler-channels-16", "push(8000, 384000, 80, 16)", OK, ""),
    ("resampler-channels-16-down", "push(384000, 8000, 3840, 16)", OK, ""),
    ("resampler-channels-17", "rtc.AudioResampler(48000, 16000, num_channels=17)", VALUE, "num_channels"),
    ("resampler-channels-0", "rtc.AudioResampler(48000, 16000, num_channels=0)", VALUE, "num_channels"),
    # -- quality: the five native presets
    *[(f"resampler-quality-{q}", f"push(48000, 16000, 480, quality={q})", OK, "") for q in range(5)],
    ("resampler-quality-5", "push(48000, 16000, 480, quality=5)", VALUE, "quality"),
    ("resampler-quality-str", "push(48000, 16000, 480, quality='medium')", TYPE, "quality"),
    # -- a push takes and gives at most 128 MiB
    ("resampler-push-in-128MiB", "push(48000, 48000, 2**26, quality=Q.QUICK)", OK, ""),
    ("resampler-push-in-past", "push(48000, 48000, 2**26 + 1, quality=Q.QUICK)", VALUE, "at most 134217728"),
    ("resampler-push-out-128MiB", "push(8000, 384000, 1398101, quality=Q.QUICK)", OK, ""),
    ("resampler-push-out-past", "push(8000, 384000, 1398102, quality=Q.QUICK)", VALUE, "at most 134217728"),
    # -- mismatched frames
    ("resampler-frame-rate-mismatch", "push(48000, 16000, 480, frame_rate=44100)", VALUE, "44100"),
    ("resampler-frame-channels-mismatch", "push(48000, 16000, 480, 2, frame_channels=1)", VALUE, "channel"),
    ("resampler-frame-not-a-frame", "rtc.AudioResampler(48000, 16000).push(np.zeros(480, np.int16))",
     TYPE, "AudioFrame"),
    # -- APM frames: whole 10 ms chunks (479 samples aborts the process natively)
    ("apm-frame-480", "apm(480)", OK, ""),
    ("apm-frame-479", "apm(479)", VALUE, "10 ms"),
    ("apm-frame-481", "apm(481)", VALUE, "10 ms"),
    ("apm-frame-960", "apm(960)", OK, ""),
    ("apm-frame-10s", "apm(480_000)", OK, ""),
    ("apm-frame-past-10s", "apm(480_480)", VALUE, "10000 ms"),
    ("apm-rate-8000", "apm(80, 8000)", OK, ""),
    ("apm-rate-44100", "apm(441, 44100)", OK, ""),
    ("apm-rate-22050", "apm(220, 22050)", VALUE, "multiples of 100"),
    ("apm-rate-384000-x16", "apm(3840, 384000, 16)", OK, ""),
    ("apm-channels-2", "apm(480, 48000, 2)", OK, ""),
    ("apm-data-misaligned", "apm(480, data=misaligned())", VALUE, "aligned"),
    ("apm-data-read-only", "apm(480, data=np.frombuffer(bytes(960), np.int16))", VALUE, "writable"),
    ("apm-not-a-frame", "rtc.AudioProcessingModule().process_stream(np.zeros(480, np.int16))",
     TYPE, "AudioFrame"),
    # -- APM stream delay: 0 to 500 ms (the native side fails outside)
    ("apm-delay-0", "apm(480, delay=0)", OK, ""),
    ("apm-delay-500", "apm(480, delay=500)", OK, ""),
    ("apm-delay-501", "apm(480, delay=501)", VALUE, "delay_ms"),
    ("apm-delay-negative", "apm(480, delay=-1)", VALUE, "delay_ms"),
    ("apm-delay-bool", "apm(480, delay=True)", TYPE, "delay_ms"),
    ("apm-option-int", "rtc.AudioProcessingModule(echo_cancellation=1)", TYPE, "echo_cancellation"),
]


def worker() -> None:
    """Run the case codes given as JSON on stdin, reporting each as it starts and ends."""
    import gc

    import rtc_trio as rtc

    namespace: dict[str, object] = {}
    exec(SETUP, namespace)
    for index, code in enumerate(json.load(sys.stdin)):
        print(f"START {index}", flush=True)
        before = rtc.live_handles()
        try:
            exec(code, namespace)
            outcome = "ok"
        except Exception as error:
            outcome = f"{type(error).__name__}: {error}"
        gc.collect()
        if rtc.live_handles() > before:
            outcome += " [leaked]"
        print(f"DONE {index} {json.dumps(outcome)}", flush=True)


def _run_all(codes: list[str]) -> list[str]:
    """Every case's outcome; a worker that dies marks its running case ABORT and restarts."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    outcomes: list[str] = []
    while len(outcomes) < len(codes):
        rest = codes[len(outcomes):]
        proc = subprocess.run([sys.executable, __file__, "--worker"], input=json.dumps(rest),
                              capture_output=True, text=True, timeout=120 + 10 * len(rest), env=env)
        done = [json.loads(line.split(" ", 2)[2]) for line in proc.stdout.splitlines()
                if line.startswith("DONE ")]
        outcomes += done
        if len(done) < len(rest):
            tail = [line for line in proc.stderr.splitlines() if line.strip()][-3:]
            outcomes.append(f"ABORT (rc {proc.returncode}): {' | '.join(tail)}")
    return outcomes


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, str]]:
    results = _run_all([code for _, code, _, _ in BOUNDS])
    yield {name: outcome for (name, _, _, _), outcome in zip(BOUNDS, results)}


@pytest.mark.parametrize("name, code, expected, words", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_bound(outcomes: dict[str, str], name: str, code: str, expected: str, words: str) -> None:
    outcome = outcomes[name]
    assert outcome.startswith(expected), f"{code} -> {outcome}"
    assert words in outcome, outcome
    assert "leaked" not in outcome


# -- the measurement behind the bounds: raw native requests, no rtc_trio checks ---------

RAW = """
import numpy as np
from rtc_trio import _native
from rtc_trio._ffi import lib
from rtc_trio._proto import ffi_pb2
def request(name, **fields):
    req = ffi_pb2.FfiRequest()
    for key, value in fields.items():
        setattr(getattr(req, name), key, value)
    return getattr(_native.request(req), name)
def resample(inr, outr, channels, samples, quality=2):
    new = request("new_sox_resampler", input_rate=inr, output_rate=outr, num_channels=channels,
                  quality_recipe=quality, input_data_type=0, output_data_type=0)
    if new.WhichOneof("message") == "error":
        return "error: " + new.error
    handle, data, out = new.resampler.handle.id, np.zeros(samples * channels, np.int16), 0
    for _ in range(3):
        res = request("push_sox_resampler", resampler_handle=handle, data_ptr=data.ctypes.data,
                      size=data.nbytes)
        if res.error:
            return "push error: " + res.error
        out += res.size
    res = request("flush_sox_resampler", resampler_handle=handle)
    lib.rtc_drop_handle(handle)
    return f"ok, {out + res.size} bytes out" if not res.error else "flush error: " + res.error
def apm(rate, channels, samples, delay=None, offset=0):
    handle = request("new_apm", echo_canceller_enabled=True, noise_suppression_enabled=True,
                     high_pass_filter_enabled=True, gain_controller_enabled=True).apm.handle.id
    errors = []
    if delay is not None:
        errors.append(request("apm_set_stream_delay", apm_handle=handle, delay_ms=delay).error)
    data = np.zeros(samples * channels + 1, np.int16)
    for name in ("apm_process_reverse_stream", "apm_process_stream"):
        errors.append(request(name, apm_handle=handle, data_ptr=data.ctypes.data + offset,
                              size=samples * channels * 2, sample_rate=rate,
                              num_channels=channels).error)
    lib.rtc_drop_handle(handle)
    return "; ".join(e for e in errors if e) or "ok"
"""

MATRIX = [
    *[f"resample({r}, 16000, 1, 480)" for r in (0, -48000, 1, 7999, 8000, 384000, 384001)],
    "resample(48000, 0, 1, 480)", "resample(8000, 384000, 16, 80)", "resample(384000, 8000, 16, 3840)",
    *[f"resample(48000, 16000, {c}, 480)" for c in (0, 1, 16, 17, 32)],
    *[f"resample(48000, 16000, 1, 480, {q})" for q in range(5)],
    "resample(48000, 16000, 2, 0)",  # nothing pushed: the flush is empty
    *[f"apm({r}, 1, {r // 100})" for r in (100, 4000, 7900, 8000, 8100, 16000, 22050, 44100, 48000,
                                           96000, 192000, 384000, 384100)],
    *[f"apm(48000, 1, {n})" for n in (479, 480, 481, 960, 480_000)],
    *[f"apm(48000, {c}, 480)" for c in (0, 1, 2, 16, 17)], "apm(384000, 16, 3840)",
    *[f"apm(48000, 1, 480, delay={d})" for d in (-2**31, -1, 0, 500, 501, 2**31 - 1)],
    "apm(48000, 1, 480, offset=1)",
]


def matrix() -> None:
    """Print each MATRIX case with what the native side did (its own subprocess each)."""
    for case in MATRIX:
        proc = subprocess.run([sys.executable, "-c", RAW + f"\nprint({case})"], capture_output=True,
                              text=True, timeout=120)
        panic = [line for line in proc.stderr.splitlines() if "panicked" in line or "assert" in line]
        if proc.returncode == 0:
            outcome = proc.stdout.strip()
        elif proc.returncode == 1:  # a Python exception: its last line
            outcome = "raised " + proc.stderr.strip().splitlines()[-1][:160]
        else:
            outcome = f"ABORT (rc {proc.returncode}) {' '.join(panic)[:160]}"
        print(f"{case:40s} {outcome}", flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    worker()
elif __name__ == "__main__" and sys.argv[1:] == ["--matrix"]:
    matrix()
