"""RPC between two participants through a real livekit-server: calls, serving, errors, limits.

``python tests/test_rpc.py loop`` is the short-timeout and cancellation loop, run in a
subprocess by :func:`test_short_timeouts_and_cancellation_loop` (an abort fails that test only).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _native, _rpc
from tests.server import require_server, test_server
from tests.test_room_support import BOUND, run, two_rooms, wait_until, warnings_logged

ROOT = Path(__file__).resolve().parent.parent


async def echo(invocation: rtc.RpcInvocation) -> str:
    return f"{invocation.caller_identity}:{invocation.payload[::-1]}"


def test_round_trip_with_the_invocation_fields() -> None:
    server = require_server()

    async def main() -> None:
        seen: list[rtc.RpcInvocation] = []

        async def record(invocation: rtc.RpcInvocation) -> str:
            seen.append(invocation)
            return await echo(invocation)

        async with two_rooms(server) as (a, b):
            async with a.local_participant.serve_rpc({"echo": record}):
                with trio.fail_after(BOUND):
                    answer = await b.local_participant.perform_rpc(
                        destination_identity="alice", method="echo", payload="héllo",
                        response_timeout=8.0)
            assert answer == "bob:olléh"
            [invocation] = seen
            assert (invocation.method, invocation.caller_identity, invocation.payload) == ("echo", "bob", "héllo")
            assert invocation.request_id
            assert 0 < invocation.response_timeout <= 8.0

    run(main)


def test_handler_errors_reach_the_caller_and_the_room_lives_on() -> None:
    server = require_server()

    async def main() -> None:
        async def refuse(invocation: rtc.RpcInvocation) -> str:
            raise rtc.RpcError(4242, "not today", data='{"why": 1}')

        async def crash(invocation: rtc.RpcInvocation) -> str:
            raise KeyError("bug")

        async def wrong_type(invocation: rtc.RpcInvocation) -> Any:
            return 12

        async def too_big(invocation: rtc.RpcInvocation) -> str:
            return "x" * (rtc.MAX_RPC_PAYLOAD + 1)

        handlers = {"refuse": refuse, "crash": crash, "wrong_type": wrong_type, "too_big": too_big,
                    "echo": echo}
        async with two_rooms(server) as (a, b):
            call = b.local_participant.perform_rpc
            with warnings_logged() as logged:
                async with a.local_participant.serve_rpc(handlers):
                    with trio.fail_after(BOUND):
                        with pytest.raises(rtc.RpcError) as refused:
                            await call(destination_identity="alice", method="refuse", payload="")
                        assert (refused.value.code, refused.value.message, refused.value.data) == (
                            4242, "not today", '{"why": 1}')
                        for method, code in (("crash", rtc.RpcError.APPLICATION_ERROR),
                                             ("wrong_type", rtc.RpcError.APPLICATION_ERROR),
                                             ("too_big", rtc.RpcError.RESPONSE_PAYLOAD_TOO_LARGE)):
                            with pytest.raises(rtc.RpcError) as failed:
                                await call(destination_identity="alice", method=method, payload="")
                            assert failed.value.code == code, method
                        assert await call(destination_identity="alice", method="echo", payload="ab") == "bob:ba"
            assert any("crash" in m for m in logged.messages())
            assert a.connection_state == rtc.ConnectionState.CONNECTED

    run(main)


def test_answers_the_wire_cannot_carry_as_given_still_go_out() -> None:
    """A lone surrogate in an answer, or an error message/data over the protocol's limits,
    neither kills the serve_rpc block nor leaves the caller waiting: the answer goes out."""
    server = require_server()

    async def surrogate(invocation: rtc.RpcInvocation) -> str:
        return "\ud800"

    async def surrogate_error(invocation: rtc.RpcInvocation) -> str:
        raise rtc.RpcError(4000, "bad \udfff", data="\ud800")

    async def huge_error(invocation: rtc.RpcInvocation) -> str:
        raise rtc.RpcError(4001, "é" * 100_000, data="d" * 100_000)

    handlers = {"surrogate": surrogate, "surrogate_error": surrogate_error,
                "huge_error": huge_error, "echo": echo}

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async def call(method: str) -> rtc.RpcError:
                with pytest.raises(rtc.RpcError) as failed:
                    await b.local_participant.perform_rpc(
                        destination_identity="alice", method=method, payload="", response_timeout=5.0)
                return failed.value

            with warnings_logged() as logged:
                async with a.local_participant.serve_rpc(handlers):
                    with trio.fail_after(BOUND):
                        assert (await call("surrogate")).code == rtc.RpcError.APPLICATION_ERROR
                        error = await call("surrogate_error")
                        assert (error.code, error.message, error.data) == (4000, "bad ?", "?")
                        error = await call("huge_error")
                        assert (error.code, error.message, error.data) == (
                            4001, "é" * (_rpc.MAX_ERROR_MESSAGE // 2), "d" * rtc.MAX_RPC_PAYLOAD)
                        assert await b.local_participant.perform_rpc(
                            destination_identity="alice", method="echo", payload="ab") == "bob:ba"
            assert any("surrogate" in m for m in logged.messages())

    run(main)


def test_unknown_method_and_a_method_whose_block_ended() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            call = b.local_participant.perform_rpc
            with trio.fail_after(BOUND):
                with pytest.raises(rtc.RpcError) as unknown:
                    await call(destination_identity="alice", method="nothing", payload="")
                assert unknown.value.code == rtc.RpcError.UNSUPPORTED_METHOD
                async with a.local_participant.serve_rpc({"echo": echo}):
                    assert await call(destination_identity="alice", method="echo", payload="x") == "bob:x"
                with pytest.raises(rtc.RpcError) as ended:
                    await call(destination_identity="alice", method="echo", payload="x")
                assert ended.value.code == rtc.RpcError.UNSUPPORTED_METHOD
                async with a.local_participant.serve_rpc({"echo": echo}):  # served again
                    assert await call(destination_identity="alice", method="echo", payload="y") == "bob:y"

    run(main)


def test_timeout_cancels_the_handler_at_the_callers_deadline() -> None:
    server = require_server()

    async def main() -> None:
        started, cancelled = trio.Event(), trio.Event()

        async def stuck(invocation: rtc.RpcInvocation) -> str:
            started.set()
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()
            return ""

        async with two_rooms(server) as (a, b):
            async with a.local_participant.serve_rpc({"stuck": stuck}):
                with trio.fail_after(BOUND):
                    with pytest.raises(rtc.RpcError) as timed_out:
                        await b.local_participant.perform_rpc(
                            destination_identity="alice", method="stuck", payload="", response_timeout=0.5)
                    assert timed_out.value.code == rtc.RpcError.RESPONSE_TIMEOUT
                    assert "within 0.5 s" in timed_out.value.message  # our scope, not the native 3 s
                    await cancelled.wait()  # the callee's own deadline ended the handler
                assert started.is_set()

    run(main)


def test_caller_cancelled_then_calls_again() -> None:
    server = require_server()

    async def main() -> None:
        started, release = trio.Event(), trio.Event()

        async def slow(invocation: rtc.RpcInvocation) -> str:
            started.set()
            await release.wait()
            return "late"

        async with two_rooms(server) as (a, b):
            async with a.local_participant.serve_rpc({"slow": slow, "echo": echo}):
                with trio.fail_after(BOUND):
                    async with trio.open_nursery() as nursery:
                        async def call() -> None:
                            await b.local_participant.perform_rpc(
                                destination_identity="alice", method="slow", payload="")
                            raise AssertionError("the cancelled call returned")
                        nursery.start_soon(call)
                        await started.wait()
                        nursery.cancel_scope.cancel()
                    release.set()  # its answer comes after the caller left: dropped
                    assert await b.local_participant.perform_rpc(
                        destination_identity="alice", method="echo", payload="ok") == "bob:ko"

    run(main)


def test_callee_leaves_mid_call() -> None:
    server = require_server()

    async def main() -> None:
        from tests.test_room_support import room_name
        name = room_name()
        started = trio.Event()

        async def stuck(invocation: rtc.RpcInvocation) -> str:
            started.set()
            await trio.sleep_forever()
            return ""

        async with rtc.connect(server.url, server.token("alice", name)) as a:
            async with trio.open_nursery() as nursery:
                leave = trio.Event()

                async def callee() -> None:
                    async with rtc.connect(server.url, server.token("bob", name)) as b:
                        async with b.local_participant.serve_rpc({"stuck": stuck}):
                            await leave.wait()

                nursery.start_soon(callee)
                await wait_until(lambda: "bob" in a.remote_participants)
                with trio.fail_after(BOUND):
                    async with trio.open_nursery() as calls:
                        async def leave_once_started() -> None:
                            await started.wait()
                            leave.set()
                        calls.start_soon(leave_once_started)
                        with pytest.raises(rtc.RpcError) as gone:
                            await a.local_participant.perform_rpc(
                                destination_identity="bob", method="stuck", payload="",
                                response_timeout=20.0)
            # the callee's block cancelled its handler and answered, or the server told us
            print("callee left:", gone.value.code, gone.value.message)
            assert gone.value.code in (rtc.RpcError.APPLICATION_ERROR,
                                       rtc.RpcError.RECIPIENT_DISCONNECTED), gone.value

    run(main)


def test_handlers_are_cancelled_when_the_room_disconnects() -> None:
    """The server removes the callee: its running handler is cancelled then, not when its
    serve_rpc block ends."""
    from tests.test_data_streams import remove_participant
    from tests.test_room_support import room_name
    server = require_server()

    async def main() -> None:
        name = room_name()
        started, cancelled = trio.Event(), trio.Event()

        async def stuck(invocation: rtc.RpcInvocation) -> str:
            started.set()
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()
            return ""

        async def call(b: rtc.Room) -> None:
            try:
                await b.local_participant.perform_rpc(
                    destination_identity="alice", method="stuck", payload="", response_timeout=60.0)
            except rtc.RpcError:
                pass

        async with rtc.connect(server.url, server.token("alice", name)) as a:
            async with rtc.connect(server.url, server.token("bob", name)) as b:
                await wait_until(lambda: "bob" in a.remote_participants)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(call, b)
                    async with a.local_participant.serve_rpc({"stuck": stuck}):
                        with trio.fail_after(BOUND):
                            await started.wait()
                        await trio.to_thread.run_sync(remove_participant, server, name, "alice")
                        with trio.fail_after(BOUND):
                            await cancelled.wait()  # the block still runs
                    nursery.cancel_scope.cancel()

    run(main)


def test_a_handler_still_running_when_its_block_ends_is_cancelled_and_answered() -> None:
    server = require_server()

    async def main() -> None:
        started, cancelled = trio.Event(), trio.Event()

        async def stuck(invocation: rtc.RpcInvocation) -> str:
            started.set()
            try:
                await trio.sleep_forever()
            finally:
                cancelled.set()
            return ""

        async with two_rooms(server) as (a, b):
            with trio.fail_after(BOUND):
                async with trio.open_nursery() as nursery:
                    async def serve() -> None:
                        async with a.local_participant.serve_rpc({"stuck": stuck}):
                            await started.wait()
                    nursery.start_soon(serve)
                    with pytest.raises(rtc.RpcError) as ended:
                        await b.local_participant.perform_rpc(
                            destination_identity="alice", method="stuck", payload="")
                assert cancelled.is_set()
                assert ended.value.code == rtc.RpcError.APPLICATION_ERROR
                assert "serve_rpc block ended" in ended.value.message

    run(main)


def test_hundred_concurrent_calls() -> None:
    server = require_server()

    async def main() -> None:
        answers: dict[int, str] = {}

        async def slowish(invocation: rtc.RpcInvocation) -> str:
            await trio.sleep(random.random() / 20)  # answers come back out of order
            return invocation.payload * 2

        async with two_rooms(server) as (a, b):
            async with a.local_participant.serve_rpc({"double": slowish}):
                async def call(i: int) -> None:
                    answers[i] = await b.local_participant.perform_rpc(
                        destination_identity="alice", method="double", payload=str(i),
                        response_timeout=BOUND)  # a loaded host: slow is not wrong
                with trio.fail_after(BOUND):
                    async with trio.open_nursery() as nursery:
                        for i in range(100):
                            nursery.start_soon(call, i)
        assert answers == {i: str(i) * 2 for i in range(100)}

    run(main)


def test_short_timeouts_and_cancellation_loop() -> None:
    """1 ms and 10 ms timeouts, and cancellation at random points, 100 times: in a subprocess."""
    require_server()
    done = subprocess.run([sys.executable, __file__, "loop"], capture_output=True, text=True,
                          timeout=180, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "panicked" not in done.stderr, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["rounds"] == 100 and counts["after"] == "bob:ok", counts
    assert counts["timeouts_1ms"] == counts["timeouts_10ms"] == 100, counts
    assert counts["handles_after"] <= counts["handles_before"], counts


async def _loop() -> dict[str, Any]:
    server = test_server()
    assert server is not None
    counts: dict[str, Any] = {"rounds": 0, "timeouts_1ms": 0, "timeouts_10ms": 0, "answered": 0,
                              "cancelled": 0, "handles_before": rtc.live_handles()}

    async def jittery(invocation: rtc.RpcInvocation) -> str:
        await trio.sleep(random.random() / 100)
        return "j"

    async def stuck(invocation: rtc.RpcInvocation) -> str:
        await trio.sleep_forever()  # until the callee's deadline: a short timeout always expires
        return ""

    async with two_rooms(server) as (a, b):
        call = b.local_participant.perform_rpc
        async with a.local_participant.serve_rpc({"jittery": jittery, "echo": echo, "stuck": stuck}):
            for _ in range(100):
                for timeout, key in ((0.001, "timeouts_1ms"), (0.01, "timeouts_10ms")):
                    try:
                        await call(destination_identity="alice", method="stuck", payload="",
                                   response_timeout=timeout)
                    except rtc.RpcError as error:
                        if error.code == rtc.RpcError.RESPONSE_TIMEOUT:
                            counts[key] += 1
                with trio.move_on_after(random.random() / 50) as scope:
                    await call(destination_identity="alice", method="jittery", payload="")
                    counts["answered"] += 1
                counts["cancelled"] += scope.cancelled_caught
                counts["rounds"] += 1
            with trio.fail_after(BOUND):
                counts["after"] = await call(destination_identity="alice", method="echo", payload="ko")
    counts["handles_after"] = rtc.live_handles()
    return counts


def test_the_handler_gets_the_callers_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The native side takes its round-trip allowance off what it is handed before telling the
    callee: rtc_trio adds it back, so a handler taking 2 s of a caller's 4 s answers in time,
    and what goes down is never short enough to trouble an older library."""
    server = require_server()
    sent: list[tuple[int, int]] = []
    forward = _native.request

    def recording(req: Any) -> Any:
        if req.WhichOneof("message") == "perform_rpc":
            sent.append((req.perform_rpc.response_timeout_ms, req.perform_rpc.max_round_trip_latency_ms))
        return forward(req)

    monkeypatch.setattr(_native, "request", recording)
    seen: list[float] = []

    async def slow(invocation: rtc.RpcInvocation) -> str:
        seen.append(invocation.response_timeout)
        await trio.sleep(2.0)
        return "done"

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with a.local_participant.serve_rpc({"slow": slow, "echo": echo}):
                with trio.fail_after(BOUND):
                    assert await b.local_participant.perform_rpc(
                        destination_identity="alice", method="slow", payload="",
                        response_timeout=4.0) == "done"
                for timeout in (0.001, 0.5):
                    with trio.fail_after(BOUND):
                        try:
                            await b.local_participant.perform_rpc(
                                destination_identity="alice", method="echo", payload="",
                                response_timeout=timeout)
                        except rtc.RpcError:
                            pass

    run(main)
    assert 3.5 <= seen[0] <= 4.0
    allowance = _rpc.ROUND_TRIP_ALLOWANCE_MS
    assert sent == [(4000 + allowance, allowance), (1 + allowance, allowance), (500 + allowance, allowance)]


def test_bad_input_is_refused_before_anything_is_sent() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            call = b.local_participant.perform_rpc
            ok = {"destination_identity": "alice", "method": "m", "payload": ""}
            for change, error in (
                ({"method": ""}, ValueError),
                ({"method": 3}, TypeError),
                ({"method": "m" * (_rpc.MAX_RPC_METHOD + 1)}, ValueError),
                ({"payload": b"bytes"}, TypeError),
                ({"payload": None}, TypeError),
                ({"payload": "é" * (rtc.MAX_RPC_PAYLOAD // 2 + 1)}, ValueError),  # 2 bytes each
                ({"destination_identity": "nobody"}, ValueError),
                ({"destination_identity": None}, TypeError),
                ({"response_timeout": 0}, ValueError),
                ({"response_timeout": -1.0}, ValueError),
                ({"response_timeout": float("nan")}, ValueError),
                ({"response_timeout": 4000.0}, ValueError),
                ({"response_timeout": "1"}, TypeError),
            ):
                with pytest.raises(error):
                    await call(**{**ok, **change})  # type: ignore[arg-type]
            serve = a.local_participant.serve_rpc
            for handlers, error in (({}, ValueError), ({"": echo}, ValueError), ({"m": 1}, TypeError),
                                    ({"m" * (_rpc.MAX_RPC_METHOD + 1): echo}, ValueError),
                                    ([("m", echo)], TypeError), ({3: echo}, TypeError)):
                with pytest.raises(error):
                    async with serve(handlers):  # type: ignore[arg-type]
                        pass
            async def size(invocation: rtc.RpcInvocation) -> str:
                return str(len(invocation.payload.encode()))

            with pytest.raises(KeyError):  # the block's own exception comes out as raised
                async with serve({"m": echo}):
                    raise KeyError("body")
            async with serve({"m": echo, "size": size}):
                with pytest.raises(ValueError, match="already served"):
                    async with serve({"m": echo}):
                        pass
                with trio.fail_after(BOUND):  # a payload at the limit goes through
                    exact = "é" * (rtc.MAX_RPC_PAYLOAD // 2)
                    assert await call(**{**ok, "method": "size", "payload": exact}) == str(rtc.MAX_RPC_PAYLOAD)
            longest = "é" * (_rpc.MAX_RPC_METHOD // 2)  # both limits at once go through too
            async with serve({longest: size}):
                with trio.fail_after(BOUND):
                    assert await call(**{**ok, "method": longest, "payload": exact}) == str(rtc.MAX_RPC_PAYLOAD)
            with pytest.raises(TypeError):
                rtc.RpcError("1500", "x")  # type: ignore[arg-type]
        # closed room
        with pytest.raises(trio.ClosedResourceError):
            await b.local_participant.perform_rpc(destination_identity="alice", method="m", payload="")
        with pytest.raises(trio.ClosedResourceError):
            async with a.local_participant.serve_rpc({"m": echo}):
                pass

    run(main)


if __name__ == "__main__" and sys.argv[1:] == ["loop"]:
    print(json.dumps(trio.run(_loop)))
