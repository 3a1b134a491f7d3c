"""Every test must end holding no more native handles than it started with."""

from __future__ import annotations

import gc
import time
from typing import Iterator

import pytest

import rtc_trio
from rtc_trio import _router


def _settled_handles(baseline: int, timeout: float = _router.PARK_SECONDS + 1.0) -> int:
    """Live handles once frames still referenced by dying objects are collected."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        count = rtc_trio.live_handles()
        if count <= baseline or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def no_leaked_handles() -> Iterator[None]:
    gc.collect()
    baseline = rtc_trio.live_handles()
    yield
    leaked = _settled_handles(baseline) - baseline
    assert leaked <= 0, f"the test left {leaked} native handle(s) behind"
