"""One notion of an argument everywhere: numpy integers are integers, bools are not."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import numpy as np
import pytest
import trio

import rtc_trio as rtc


def _audio_source(value: Any) -> Awaitable[None]:
    async def run() -> None:
        async with rtc.open_audio_source(48000, value):
            pass
    return run()


def _connect_timeout(value: Any) -> Awaitable[None]:
    async def run() -> None:  # refused before any connection is tried
        async with rtc.connect("ws://127.0.0.1:9", "token", timeout=value):
            pass
    return run()


def _publish_options(value: Any) -> Awaitable[None]:
    async def run() -> None:
        rtc.TrackPublishOptions(audio_max_bitrate=value)
        await trio.lowlevel.checkpoint()
    return run()


INTEGER_ARGUMENTS: list[tuple[str, Callable[[Any], Awaitable[None]], Any]] = [
    ("num_channels", _audio_source, 1),
    ("audio_max_bitrate", _publish_options, 64_000),
]


@pytest.mark.parametrize("name, call, good", INTEGER_ARGUMENTS, ids=[a[0] for a in INTEGER_ARGUMENTS])
async def test_integers_take_numpy_integers_and_refuse_bools(
    name: str, call: Callable[[Any], Awaitable[None]], good: int
) -> None:
    await call(np.int64(good))
    await call(np.uint16(good) if good < 65536 else np.int32(good))
    for bad in (True, False, np.bool_(True), 1.0, "1"):
        with pytest.raises(TypeError, match=name):
            await call(bad)


async def test_numbers_refuse_bools_and_non_finite_values() -> None:
    for bad in (True, np.bool_(False), "5"):
        with pytest.raises(TypeError, match="timeout"):
            await _connect_timeout(bad)
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            await _connect_timeout(bad)


async def test_flags_refuse_integers() -> None:
    for bad in (0, 1, "yes", None):
        with pytest.raises(TypeError, match="auto_subscribe"):
            async with rtc.connect("ws://127.0.0.1:9", "token", auto_subscribe=bad):
                pass


def test_the_exceptions_live_together() -> None:
    import rtc_trio.aio as aio
    from rtc_trio import _errors

    assert rtc.ConnectError.__module__ == rtc.RtcError.__module__ == _errors.__name__
    assert issubclass(rtc.ConnectError, rtc.RtcError)
    assert aio.NotUnderTrioAsyncio is rtc.NotUnderTrioAsyncio
    assert issubclass(rtc.NotUnderTrioAsyncio, RuntimeError)
