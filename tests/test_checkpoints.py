"""Every public async receive is a checkpoint, even when a frame comes in a race (trio's rule)."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from rtc_trio import _router
from rtc_trio._ffi import lib
from tests.helpers import audio_loopback, numbered_frame


async def test_stream_receive_checkpoints_when_a_frame_arrives_while_it_parks() -> None:
    async with audio_loopback() as (source, _, stream):
        await source.capture_frame(numbered_frame(0))
        with trio.fail_after(5):
            while not lib.rtc_ring_park(stream._handle.id):  # 1 once the frame is in the ring
                await trio.sleep(0.005)
        # The race: the first look finds nothing, then the frame lands before parking.
        real_pop, looks = stream._pop, []

        def pop() -> Any:
            looks.append(None)
            return None if len(looks) == 1 else real_pop()

        stream._pop = pop  # type: ignore[method-assign]
        with trio.testing.assert_checkpoints():
            frame = await stream.receive()
        assert len(looks) == 2
        assert (frame.data[:, 0] == numbered_frame(0).data).all()


class _RacySubscription(_router.Subscription[str]):
    """Its first look finds nothing and an item lands right after, as from a native thread."""

    raced = False

    def receive_nowait(self) -> str:
        if not self.raced:
            self.raced = True
            _router.deliver(self.key, "late")
            raise trio.WouldBlock
        return super().receive_nowait()


async def test_subscription_receive_checkpoints_when_an_item_arrives_while_it_parks() -> None:
    sub = _router.subscribe(424_242_424, _RacySubscription(4))
    try:
        with trio.testing.assert_checkpoints():
            assert await sub.receive() == "late"
        assert sub.raced
    finally:
        sub.close()


async def test_stream_receive_of_a_buffered_frame_checkpoints() -> None:
    async with audio_loopback() as (source, _, stream):
        await source.capture_frame(numbered_frame(0))
        with trio.fail_after(5):
            while not lib.rtc_ring_park(stream._handle.id):
                await trio.sleep(0.005)
        with trio.testing.assert_checkpoints():
            await stream.receive()
