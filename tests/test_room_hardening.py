"""Room guarantees under stress, each against the real server: a cancelled publish or connect
leaves nothing behind, the room's state survives a burst it could not read in time, the body's
exception comes out as it was raised, and oversized arguments are refused up front."""

from __future__ import annotations

import contextlib
import logging
import random
import subprocess
import sys
import threading
import time
import traceback
from typing import Callable, Iterator

import pytest
import trio
import trio.testing

import rtc_trio as rtc
from rtc_trio import _handles, _native, _router
from rtc_trio._proto import ffi_pb2
from rtc_trio._room import ROOM_INBOX_CAPACITY
from rtc_trio._participant import MAX_DATA_PAYLOAD
from rtc_trio._room_events import MAX_EVENT_CAPACITY
from tests.server import TestServer, participants, require_server
from tests.test_room_support import (
    BOUND, RATE, room_name, run, two_rooms, wait_for_event, wait_until,
)


# -- the library's own account of what it finished natively ----------------------------

class _Messages(logging.Handler):
    """Collects the ``rtc_trio`` logger's records, debug ones included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    async def wait_for(self, text: str) -> None:
        with trio.fail_after(BOUND):
            while not any(text in message for message in self.messages):
                await trio.sleep(0.01)


@contextlib.contextmanager
def _debug_log() -> Iterator[_Messages]:
    logger = logging.getLogger("rtc_trio")
    handler, level = _Messages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _server_lists(server: TestServer, room: str) -> dict[str, list[str]]:
    return await trio.to_thread.run_sync(participants, server, room)


async def _wait_until_the_server_lists(server: TestServer, room: str,
                                       done: Callable[[dict[str, list[str]]], bool]) -> None:
    # Bounded below 15 s: a room left connected natively stays listed at least that long
    # (not much below: each listing is an HTTP call that a loaded host makes slow).
    with trio.fail_after(14):
        while not done(await _server_lists(server, room)):
            await trio.sleep(0.1)


# -- a cancelled publish_track -----------------------------------------------------------

def test_a_cancelled_publish_leaves_nothing_published() -> None:
    """Cancelled after its request went out (a zero delay cancels at the first wait for the
    reply; the others land anywhere in the publish), every track ends up unpublished: each
    cancelled one is unpublished once its late reply comes, the server lists no track of
    alice's, and alice holds no publication and no handle beyond her baseline. (Another
    participant may never see a track that came and went quickly: the server is the judge.)"""
    server = require_server()
    rng = random.Random(4)
    delays = [0.0, 0.0, 0.0] + [rng.uniform(0.0, 0.1) for _ in range(9)]
    outcomes: dict[str, int] = {}

    async def main(log: _Messages) -> None:
        async with two_rooms(server, auto_subscribe=False) as (a, _):
            baseline = rtc.live_handles()
            async with rtc.open_audio_source(RATE, 1, queue_size_ms=0) as source:
                for index, delay in enumerate(delays):
                    name = f"t{index}"
                    with rtc.LocalAudioTrack.create(name, source) as track:
                        with trio.move_on_after(delay) as scope:
                            publication = await a.local_participant.publish_track(track)
                        if scope.cancelled_caught:
                            outcome = "cancelled"
                            await log.wait_for(f"unpublished track {name!r}")
                        else:
                            outcome = "published"
                            await a.local_participant.unpublish_track(publication)
                        outcomes[outcome] = outcomes.get(outcome, 0) + 1
                        print(f"round {index}: {outcome} after {delay:.3f} s", flush=True)
            await _wait_until_the_server_lists(server, a.name, lambda listed: listed["alice"] == [])
            assert a.local_participant.track_publications == {}
            await wait_until(lambda: rtc.live_handles() == baseline)

    with _debug_log() as log:
        run(main, log)
    print(outcomes)
    assert outcomes.get("cancelled", 0) >= 3  # the zero delays, at least


# -- the room's state under a burst -----------------------------------------------------

BURST = 5000  # more events than any bound inside rtc_trio

PEER = r"""
import sys, trio, rtc_trio as rtc
url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def main():
    sys.stdin.readline()  # "join"
    async with rtc.connect(url, token) as room:
        await trio.to_thread.run_sync(sys.stdin.readline)  # "burst"
        async def send(first):
            for i in range(first, count, 16):
                await room.local_participant.publish_data(b"%d" % i, topic="burst")
        async with trio.open_nursery() as nursery:
            for first in range(16):
                nursery.start_soon(send, first)
        await room.local_participant.publish_data(b"end", topic="end")  # reliable: arrives last
        await trio.to_thread.run_sync(sys.stdin.readline)  # "bye"

trio.run(main)
"""


def _route(room: rtc.Room) -> list[tuple[str, bytes | None, str]]:
    """What the room's own route holds (filled natively), oldest first: kind, payload, identity."""
    with _router._lock:
        items = [item for item, _ in room._sub._items]
    described: list[tuple[str, bytes | None, str]] = []
    for event, payload in items:
        which = event.WhichOneof("message") or ""
        message = getattr(event, which)
        identity = (message.info.info.identity if which == "participant_connected"
                    else getattr(message, "participant_identity", ""))
        described.append((which, payload, identity))
    return described


def _tell(peer: subprocess.Popen[str], line: str) -> None:
    assert peer.stdin is not None
    peer.stdin.write(line + "\n")
    peer.stdin.flush()


def _block_until(peer: subprocess.Popen[str], what: str, done: Callable[[], bool]) -> None:
    """Block this whole trio run (on purpose: the room's task cannot apply anything) until
    ``done()``; fail if the peer dies or it takes too long."""
    deadline = time.monotonic() + 2 * BOUND
    while not done():
        if peer.poll() is not None:
            raise AssertionError(f"the peer exited with {peer.returncode} before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in time")
        time.sleep(0.01)


def test_room_state_survives_a_burst_it_could_not_read_in_time() -> None:
    """bob's trio thread is blocked while alice joins and then sends BURST data packets: bob's
    room receives it all natively before its task can apply any of it, alice's join first; its
    route keeps the join (a state event) and drops the oldest packets beyond its bound.
    Once unblocked, bob's state has alice; a reader that did not read lost its oldest events,
    counted, and kept the newest."""
    server = require_server()

    async def main() -> None:
        name = room_name("burst")
        async with rtc.connect(server.url, server.token("bob", name)) as b:
            probe = b.events()  # read along while the room applies the burst
            unread = b.events(capacity=64)  # not read until the burst is applied
            command = [sys.executable, "-c", PEER, server.url, server.token("alice", name), str(BURST)]
            peer = subprocess.Popen(command, stdin=subprocess.PIPE, text=True)
            try:
                _tell(peer, "join")
                _block_until(peer, "alice's join reached bob", lambda: any(
                    (which, identity) == ("participant_connected", "alice")
                    for which, _, identity in _route(b)))
                _tell(peer, "burst")
                _block_until(peer, "the burst reached bob", lambda: _route(b)[-1][1] == b"end")
                queued = len(_route(b))
                got = await wait_for_event(probe, rtc.DataReceived, lambda e: e.topic == "end")
                assert "alice" in b.remote_participants, "the join was lost in the burst"
                assert got.participant is b.remote_participants["alice"]
                # bounded: beyond its capacity the room's route dropped the oldest data packets
                assert queued <= ROOM_INBOX_CAPACITY
                assert b._sub.dropped >= BURST + 2 - ROOM_INBOX_CAPACITY  # join, burst, end
                assert unread.dropped >= queued - unread.capacity
                kept = [unread.receive_nowait() for _ in range(unread.capacity)]  # it is full
                assert not any(isinstance(e, rtc.ParticipantConnected) for e in kept)  # oldest went
                assert any(isinstance(e, rtc.DataReceived) and e.payload == b"end" for e in kept)
                _tell(peer, "bye")
                with trio.fail_after(BOUND):
                    code = await trio.to_thread.run_sync(peer.wait, abandon_on_cancel=True)
                assert code == 0
                left = await wait_for_event(probe, rtc.ParticipantDisconnected)
                assert left.participant.identity == "alice" and "alice" not in b.remote_participants
            finally:
                peer.kill()
                peer.wait()

    run(main)


# -- streams a room ends itself ----------------------------------------------------------

async def test_native_events_after_a_room_ended_a_stream_are_dropped_not_parked() -> None:
    """A room ends the streams of a remote track itself (unsubscribed, participant left),
    usually before the native stream's own end arrives. Once the consumer has closed, a late
    frame (its native handle) and the native end are dropped on arrival: nothing is parked,
    and no handle waits out the parking time (which made the handle count flaky)."""
    async with rtc.open_audio_source() as source:
        track = rtc.LocalAudioTrack.create("mic", source)
        late_frame = track._handle.id  # a real native handle, standing for a late frame's
        track._handle.id = 0  # the router owns it now
        key = 555_000_111
        sub: _router.Subscription[object] = _router.subscribe(key, _router.Subscription(4))
        _router.end(key)  # what RemoteTrack.close and a participant leaving do
        sub.close()  # the consumer's block ends
        _router.deliver(key, object(), late_frame)
        _router.end(key)  # the native end of the stream
        assert late_frame not in _handles._held
        assert key not in _router._parked


async def test_a_room_ending_a_closed_stream_does_not_unmark_it() -> None:
    """The other order: the consumer closed first, then the room ends the stream (its
    participant left) before the native side stops sending: a frame that comes after both
    is still dropped on arrival, not parked holding its handle for seconds."""
    async with rtc.open_audio_source() as source:
        track = rtc.LocalAudioTrack.create("mic", source)
        late_frame = track._handle.id
        track._handle.id = 0  # the router owns it now
        key = 555_000_222
        sub: _router.Subscription[object] = _router.subscribe(key, _router.Subscription(4))
        sub.close()  # the consumer's block ends
        _router.end(key)  # then its participant leaves
        _router.deliver(key, object(), late_frame)
        assert late_frame not in _handles._held
        assert key not in _router._parked


# -- a cancelled connect whose room was created ------------------------------------------

async def _cancel_once_waiting(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()  # the connect request is out, its task waits
    scope.cancel()


async def _cancel_a_connect_whose_room_is_created(server: TestServer, log: _Messages) -> None:
    """Cancel a connect while it waits for its reply, the native connect free to complete;
    return once the room it created after the caller left is disconnected (by the server's
    own list: another participant may never see a short stay)."""
    name = room_name("late")
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_once_waiting, scope)
            async with rtc.connect(server.url, server.token("ghost", name)):
                pytest.fail("the block must not run")
    assert scope.cancelled_caught
    await log.wait_for(f"connect to room {name!r} completed after its caller left")
    await _wait_until_the_server_lists(server, name, lambda listed: "ghost" not in listed)


def test_a_cancelled_connect_whose_room_was_created_is_disconnected() -> None:
    """The connect is cancelled while it waits for its reply, with the native connect free to
    complete: its room is created natively after the caller left, and must be disconnected.
    Checked against the server's own list (another participant may never see a short stay)."""
    server = require_server()
    with _debug_log() as log:
        run(_cancel_a_connect_whose_room_is_created, server, log)


def test_a_late_connect_is_finished_from_the_trio_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """As above, and the requests that finish the late room (ready_for_room_event, then
    disconnect) go out from the trio run's own thread, never from inside the native callback
    (a re-entrancy livekit_ffi does not document), and every handle of the late room is
    released once it is disconnected."""
    server = require_server()
    sent: list[tuple[str, bool]] = []  # request kind, sent from the trio thread
    trio_thread = threading.get_ident()  # trio.run runs on this thread
    request = _native.request

    def recording(req: ffi_pb2.FfiRequest) -> ffi_pb2.FfiResponse:
        sent.append((req.WhichOneof("message") or "", threading.get_ident() == trio_thread))
        return request(req)

    async def main(log: _Messages) -> None:
        baseline = rtc.live_handles()
        await _cancel_a_connect_whose_room_is_created(server, log)
        await wait_until(lambda: rtc.live_handles() == baseline)

    monkeypatch.setattr(_native, "request", recording)
    with _debug_log() as log:
        run(main, log)
    finishing = [entry for entry in sent if entry[0] in ("ready_for_room_event", "disconnect")]
    assert finishing == [("ready_for_room_event", True), ("disconnect", True)], sent


LATE_AFTER_THE_RUN = r"""
import logging, sys, trio, trio.testing, rtc_trio as rtc
logging.basicConfig(stream=sys.stdout, format="%(message)s")
logging.getLogger("rtc_trio").setLevel(logging.DEBUG)
url, token = sys.argv[1], sys.argv[2]

async def main():
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            async def cancel():
                await trio.testing.wait_all_tasks_blocked()  # the connect request is out
                scope.cancel()
            nursery.start_soon(cancel)
            async with rtc.connect(url, token):
                raise AssertionError("the block must not run")

trio.run(main)  # over long before the native connect completes
print("run over", flush=True)
sys.stdin.readline()  # "bye"
"""


def test_a_late_connect_whose_trio_run_is_over_is_still_disconnected() -> None:
    """The caller's whole trio run ends before its cancelled connect completes natively:
    there is no run to hand the late room to, and it is disconnected all the same (left
    alone, livekit_ffi would panic 15 s later, waiting for its ready_for_room_event). In a
    subprocess: a panic would take that process's native library with it."""
    server = require_server()
    name = room_name("late")
    command = [sys.executable, "-c", LATE_AFTER_THE_RUN, server.url, server.token("ghost", name)]

    async def main() -> None:
        child = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        try:
            output = b""
            with trio.fail_after(BOUND):
                while f"connect to room {name!r} completed after its caller left".encode() not in output:
                    chunk = await child.stdout.receive_some()
                    assert chunk, f"the child ended early: {output.decode()}"
                    output += chunk
            await _wait_until_the_server_lists(server, name, lambda listed: "ghost" not in listed)
            await child.stdin.send_all(b"bye\n")
            with trio.fail_after(BOUND):
                assert await child.wait() == 0
            print(output.decode())
        finally:
            child.kill()
            with trio.CancelScope(shield=True):
                await child.wait()

    run(main)


# -- the body's exception -----------------------------------------------------------------

class Mine(Exception):
    pass


def test_an_exception_from_the_block_keeps_its_context_and_traceback() -> None:
    server = require_server()

    async def main() -> None:
        context = KeyError("handled when the block raised")
        with trio.fail_after(BOUND):
            try:
                try:
                    raise context
                except KeyError:
                    async with rtc.connect(server.url, server.token("oops", room_name())):
                        raise Mine("raised in the block")
            except Mine as caught:
                error = caught
        assert error.__context__ is context and not error.__suppress_context__
        assert error.__cause__ is None
        chain: BaseException | None = error
        while chain is not None:
            assert not isinstance(chain, BaseExceptionGroup), "a group in the chain"
            chain = chain.__context__
        lines = [frame.line for frame in traceback.extract_tb(error.__traceback__)]
        assert 'raise Mine("raised in the block")' in lines

    run(main)


@pytest.mark.filterwarnings("ignore::trio.TrioDeprecationWarning")
@pytest.mark.parametrize("strict", [True, False])
def test_a_group_raised_in_the_block_comes_out_as_it_was(strict: bool) -> None:
    server = require_server()
    mine = ExceptionGroup("mine", [ValueError("inner")])

    async def main() -> None:
        with trio.fail_after(BOUND), pytest.raises(BaseException) as caught:
            async with rtc.connect(server.url, server.token("group", room_name())):
                raise mine
        assert caught.value is mine  # neither unwrapped nor wrapped again

    trio.run(main, strict_exception_groups=strict)


# -- bounds, refused before anything native -----------------------------------------------

def test_event_capacity_and_data_payload_bounds() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            with a.events(capacity=MAX_EVENT_CAPACITY) as events:
                assert events.capacity == MAX_EVENT_CAPACITY
            with pytest.raises(ValueError, match="capacity"):
                a.events(capacity=MAX_EVENT_CAPACITY + 1)
            with pytest.raises(ValueError, match="capacity"):
                a.events(capacity=0)
            received = b.events()
            largest = bytes(range(256)) * (MAX_DATA_PAYLOAD // 256)
            assert len(largest) == MAX_DATA_PAYLOAD
            await a.local_participant.publish_data(largest, topic="largest")
            got = await wait_for_event(received, rtc.DataReceived)
            assert (got.topic, got.payload) == ("largest", largest)
            for too_big in (largest + b"x", bytearray(MAX_DATA_PAYLOAD + 1),
                            "é" * (MAX_DATA_PAYLOAD // 2 + 1)):
                with pytest.raises(ValueError, match=str(MAX_DATA_PAYLOAD)):
                    await a.local_participant.publish_data(too_big)
        # checked before anything else: a closed room still refuses the size first
        with pytest.raises(ValueError, match=str(MAX_DATA_PAYLOAD)):
            await a.local_participant.publish_data(largest + b"x")
        with pytest.raises(trio.ClosedResourceError):
            await a.local_participant.publish_data(largest)

    run(main)
