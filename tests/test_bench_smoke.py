"""Smoke test of bench/run.py: every scenario yields figures for both implementations.

Runs ``bench/run.py --quick --json`` in a subprocess. Asserts only that figures exist
(numbers present, frames received); never a timing or a ratio: the machine is noisy.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server import test_server

ROOT = Path(__file__).resolve().parent.parent
RESULT_KEYS = [
    "audio-1", "audio-100", "audio-realtime-100", "audio-capacity",
    "video-720p", "video-720p-paced", "video-1080p", "video-1080p-paced", "zero-copy",
    "resample-48k-16k", "apm-aec",  # voice toolkit (issue 8)
]
RESULT_KEYS += ["mixer-4"]  # voice toolkit: mixer (issue 8)
RPC_KEYS = ["data-rpc", "rpc-16"]  # through the tests' livekit-server
RPC_SCHEMA = ["calls_per_s", "cpu_us_per_call", "latency_ms_p50", "latency_ms_p99", "errors"]
RESULT_KEYS += ["aio-audio-1", "aio-audio-100", "audio-realtime-100-one-pacer"]  # issue 10, sec. 2/2b
ALWAYS = ["frames_per_s", "cpu_us_per_frame", "python_cpu_us_per_frame",
          "native_cpu_us_per_frame", "drops", "peak_rss_mb", "streams"]
SCHEMA = ALWAYS + ["latency_ms_p50", "latency_ms_p99", "py_heap_bytes_per_frame"]


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def test_quick_bench_has_figures_for_both(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["machine"]["cores"]
    results = doc["results"]
    assert sorted(results) == sorted(RESULT_KEYS + RPC_KEYS)
    for key in RPC_KEYS:
        for side in ("rtc_trio", "livekit"):
            res = results[key][side]
            if test_server() is None:  # no server to run them against: said so
                assert "no LiveKit server" in res["error"], res
                continue
            assert "error" not in res, f"{key}/{side}: {res.get('error')} {res.get('stderr_tail')}"
            assert all(_number(res[fig]) for fig in RPC_SCHEMA), f"{key}/{side}: {res}"
            assert res["calls"] > 0, f"{key}/{side}"
            if key == "data-rpc":  # and the text streams, read whole and checked
                assert res["text_received_1k"] > 0 and res["text_received_1m"] > 0, res
                assert _number(res["text_mb_per_s_1k"]) and res["text_mb_per_s_1k"] > 0, res
    for key in RESULT_KEYS:
        for side in ("rtc_trio", "livekit"):
            res = results[key][side]
            where = f"{key}/{side}"
            assert "error" not in res, f"{where}: {res.get('error')} {res.get('stderr_tail')}"
            for fig in SCHEMA:
                assert fig in res, f"{where}: {fig} missing"
            for fig in ALWAYS:
                assert _number(res[fig]), f"{where}: {fig} = {res[fig]!r}"
            assert res["received"] > 0 and res["frames_per_s"] > 0, where
            if key.startswith("audio"):
                assert _number(res["latency_ms_p50"]) and _number(res["latency_ms_p99"]), where
    for side in ("rtc_trio", "livekit"):
        assert _number(results["zero-copy"][side]["py_heap_bytes_per_frame"]), side
        assert results["audio-capacity"][side]["levels"], f"{side}: no capacity level tried"


# ---- room-* scenarios (issue 10): through the test server ----

import os  # noqa: E402

import numpy as np  # noqa: E402

from tests.server import require_server  # noqa: E402

ROOM_ALWAYS = ALWAYS + ["sent", "received", "gaps", "jitter_ms_p50", "jitter_ms_p99"]


def _room_codes() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import _room_codes
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return _room_codes


def test_room_codes_read_back_every_frame_and_count_the_missing() -> None:
    """Frames cut anywhere, some missing, one stretched (as a jitter buffer does), with noise
    and a neighbour tone leaking in (as Opus does): exactly the missing ones are counted."""
    codes = _room_codes()
    rng = np.random.default_rng(1)
    frames = [codes.code_frame(k % codes.CODES).astype(np.float64) for k in range(400)]
    frames[200] = np.concatenate([frames[200], frames[200][:240]])  # stretched by 5 ms
    t = np.arange(480) / codes.RATE
    frames[100] = frames[100] + 0.3 * codes.AMPLITUDE * np.sin(2 * np.pi * 2600 * t)  # leak
    missing = {5, 70, 71, 72, 300}
    kept = np.concatenate([f for k, f in enumerate(frames) if k not in missing])
    kept += rng.normal(0, 1500, len(kept))
    signal = np.clip(kept, -32768, 32767).astype(np.int16)[int(rng.integers(480)):]  # cut anywhere
    symbols = codes.decode(codes.keep(signal).copy())
    assert codes.gaps(symbols) == len(missing)
    assert len(symbols) >= 400 - len(missing) - 1  # the first frame may be cut short


def test_room_audio_bench_runs_both_sides_through_the_server(tmp_path: Path) -> None:
    server = require_server()
    out = tmp_path / "room.json"
    env = dict(os.environ, RTC_TRIO_BENCH_URL=server.url, RTC_TRIO_BENCH_API_KEY=server.api_key,
               RTC_TRIO_BENCH_API_SECRET=server.api_secret)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--only", "room-audio-1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert sorted(results) == ["room-audio-1"]
    for side in ("rtc_trio", "livekit"):
        res = results["room-audio-1"][side]
        assert "error" not in res, f"{side}: {res.get('error')} {res.get('stderr_tail')}"
        for fig in ROOM_ALWAYS:
            assert _number(res[fig]), f"{side}: {fig} = {res.get(fig)!r}"
        assert res["received"] > 0 and res["sent"] > 0, side
        assert res["streams"] == 1 and res["threads_cpu_us_per_frame"], side
