"""The demo, run as a user runs it: ``python -m rtc_trio --seconds 2`` and its ``--voice`` stages."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-m", "rtc_trio", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=ROOT)


def figure(pattern: str, text: str) -> tuple[float, ...]:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return tuple(float(group) for group in match.groups())


def test_the_loopback_demo_keeps_working() -> None:
    run = demo("--seconds", "2")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "sent 200 frames of a 440 Hz tone" in run.stdout
    # frames lost or late on a loaded machine are the loopback's own figures: not asserted
    received, frequency = figure(r"received (\d+) frames, .* dominant frequency ([\d.]+) Hz", run.stdout)
    assert received > 0 and abs(frequency - 440) <= 5
    assert "resampled" not in run.stdout  # the voice stages only with --voice


def test_the_voice_stages_report_what_they_did() -> None:
    run = demo("--seconds", "2", "--voice")
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    n_in, n_out, level_in, level_out, f_in, f_out = figure(
        r"resampled 48000 -> 16000 Hz: (\d+) -> (\d+) samples, level (-?[\d.]+) -> (-?[\d.]+) dBFS, "
        r"dominant ([\d.]+) -> ([\d.]+) Hz", out)
    assert n_out == n_in / 3 and abs(level_out - level_in) <= 0.5 and abs(f_out - 440) <= 2
    (attenuation,) = figure(r"echo cancellation: .* attenuated by (-?[\d.]+) dB", out)
    assert attenuation >= 20
    reduction, tone_in, tone_out = figure(
        r"noise suppression: .* reduced by (-?[\d.]+) dB; tone (-?[\d.]+) -> (-?[\d.]+) dBFS", out)
    assert reduction >= 10 and abs(tone_out - tone_in) <= 3


def test_voice_is_for_the_loopback_mode() -> None:
    run = demo("--url", "ws://10.0.0.1:1", "--token", "x", "--voice")
    assert run.returncode == 2 and "--voice" in run.stderr
    run = demo("--seconds", "0.5", "--voice")
    assert run.returncode == 2 and "at least 1" in run.stderr
