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

ROOT = Path(__file__).resolve().parent.parent
RESULT_KEYS = [
    "audio-1", "audio-100", "audio-realtime-100", "audio-capacity",
    "video-720p", "video-720p-paced", "video-1080p", "video-1080p-paced", "zero-copy",
]
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
    assert sorted(results) == sorted(RESULT_KEYS)
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
