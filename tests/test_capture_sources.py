"""Capture completions belong to their source: no other source's captures can lose them."""

from __future__ import annotations

import trio

import rtc_trio as rtc
from tests.helpers import numbered_frame

OLD_TABLE = 4096  # completions used to share a table of this many slots, indexed by async id


async def test_a_quiet_source_still_completes_after_another_captured_a_table_full() -> None:
    frame = numbered_frame(0)
    async with rtc.open_audio_source(queue_size_ms=0) as quiet, rtc.open_audio_source(queue_size_ms=0) as busy:
        with trio.fail_after(20):
            await quiet.capture_frame(frame)
            for _ in range(OLD_TABLE):
                await busy.capture_frame(frame)
            await quiet.capture_frame(frame)
            await quiet.wait_for_playout()
