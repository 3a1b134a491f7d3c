"""Many-room agent processes (examples/many_rooms.py) against a two-node LiveKit cluster.

    python bench/cluster.py [--processes 2] [--rooms 6] [--warmup 3] [--seconds 15] [--json FILE]

As root it makes a network namespace (tests/run.py's), starts Redis and two livekit-server
nodes in it (tests/cluster.py) and runs, inside it:

- ``--processes`` agent processes, each an echo agent in ``--rooms`` rooms, connected to the
  nodes in turn (process i to node i % 2);
- one caller process that joins every room through the node its agent does not use,
  publishes a tone (10 ms frames in real time) and times the echo frames it gets back.

Once every room's echo arrives, and ``--warmup`` seconds more, it measures for ``--seconds``:
the agents' CPU (/proc/PID/stat, every thread) and the echo frames the callers received. It
reports the streams served (rooms whose echo arrived in the window), the frames/s of the
slowest, CPU per stream (percent of one core) and per echoed frame. Each stream is one remote
track an agent receives and decodes, and one it encodes and publishes. Figures taken on a
shared host are noisy: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import run as runner  # noqa: E402  (the namespace and the server binary)

RATE = 48000
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 90.0  # for every room's echo to arrive before measuring anyway


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="many-room agents against a LiveKit cluster")
    p.add_argument("--processes", type=int, default=2, help="agent processes")
    p.add_argument("--rooms", type=int, default=6, help="rooms per agent process")
    p.add_argument("--warmup", type=float, default=3.0,
                   help="seconds between every echo arriving and the measurement")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds measured")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--callers", help=argparse.SUPPRESS)  # JSON plan of the caller process
    return p.parse_args(argv)


# -- the caller process: joins every room, speaks, times the echo frames ----------------------

async def _caller(url: str, token: str, arrivals: list[float]) -> None:
    """``_call``, joining again whenever the connect fails (a loaded host can be slow)."""
    import trio

    import rtc_trio as rtc

    while True:
        try:
            return await _call(url, token, arrivals)
        except rtc.ConnectError as exc:
            print(f"bench/cluster.py: caller: {exc}; joining again", file=sys.stderr, flush=True)
            await trio.sleep(1.0)


async def _call(url: str, token: str, arrivals: list[float]) -> None:
    """Join, publish a 440 Hz tone, and note the arrival time of every echo frame."""
    import numpy as np
    import trio

    import rtc_trio as rtc

    async def speak(source: rtc.AudioSource) -> None:
        t = np.arange(RATE // 100) / RATE
        for index in itertools.count():
            phase = 2 * math.pi * 440.0 * index / 100
            data = (8000 * np.sin(2 * math.pi * 440.0 * t + phase)).astype(np.int16)
            await source.capture_frame(rtc.AudioFrame(data, RATE))

    async with rtc.connect(url, token) as room:
        events = room.events()
        async with rtc.open_audio_source(RATE, 1, queue_size_ms=100) as source, \
                trio.open_nursery() as nursery:
            with rtc.LocalAudioTrack.create("voice", source) as track:
                await room.local_participant.publish_track(
                    track, rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE))
                nursery.start_soon(speak, source)
                echo = await _echo_track(events)
                if echo is not None:
                    async with rtc.open_audio_stream(echo) as stream:
                        async for _ in stream:
                            arrivals.append(time.monotonic())
                nursery.cancel_scope.cancel()


async def _echo_track(events: Any) -> Any:
    """The agent's echo track once subscribed (None if the room ends first)."""
    import rtc_trio as rtc

    async for event in events:
        if isinstance(event, rtc.TrackSubscribed) and event.publication.name.startswith("echo-"):
            return event.track
    return None


def callers_main(plan: dict[str, list[str]]) -> None:
    """The caller process: every room (name -> [url, token]) at once. Prints ``READY`` once
    every room's echo arrives (or after READY_TIMEOUT_S), runs until SIGTERM, then prints the
    arrival times as JSON."""
    import trio

    from examples.many_rooms import stop_on_signal

    arrivals: dict[str, list[float]] = {room: [] for room in plan}

    async def announce_ready() -> None:
        with trio.move_on_after(READY_TIMEOUT_S):
            while not all(arrivals.values()):
                await trio.sleep(0.1)
        print("READY", sum(bool(a) for a in arrivals.values()), flush=True)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, nursery.cancel_scope)
            nursery.start_soon(announce_ready)
            for room, (url, token) in plan.items():
                nursery.start_soon(_caller, url, token, arrivals[room])

    trio.run(main)
    print(json.dumps({room: [round(t, 4) for t in times] for room, times in arrivals.items()}),
          flush=True)


# -- inside the namespace: the cluster, the agents, the measurement ---------------------------

def _cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_bytes()
    fields = text[text.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _token(key: str, secret: str, identity: str, room: str) -> str:
    from livekit import api

    return (api.AccessToken(key, secret).with_identity(identity)
            .with_grants(api.VideoGrants(room_join=True, room=room)).to_jwt())


def inside(args: argparse.Namespace) -> dict[str, Any]:
    """Run the workload on a fresh cluster (this process is in the namespace)."""
    from tests.cluster import livekit_cluster

    with tempfile.TemporaryDirectory(prefix="rtc_trio-bench-") as tmp, \
            livekit_cluster(Path(tmp)) as cluster:
        nodes = cluster.nodes
        key, secret = nodes[0].server.api_key, nodes[0].server.api_secret
        rooms = [[f"bench-{p}-{r}" for r in range(args.rooms)] for p in range(args.processes)]
        agents = [subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "many_rooms.py"), "--json",
             "--url", nodes[p % 2].server.url, "--api-key", key, "--api-secret", secret,
             "--rooms", *rooms[p]], stdout=subprocess.PIPE, text=True)
            for p in range(args.processes)]
        plan = {room: [nodes[(p + 1) % 2].server.url, _token(key, secret, f"caller-{room}", room)]
                for p, group in enumerate(rooms) for room in group}
        callers = subprocess.Popen([sys.executable, __file__, "--callers", json.dumps(plan)],
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert callers.stdout is not None
            ready = callers.stdout.readline().split()  # READY <rooms echoing>
            time.sleep(args.warmup)
            start, cpu0 = time.monotonic(), [_cpu_s(agent.pid) for agent in agents]
            time.sleep(args.seconds)
            end, cpu1 = time.monotonic(), [_cpu_s(agent.pid) for agent in agents]
            hosting = [cluster.node_hosting(room) for group in rooms for room in group]
        finally:
            for proc in (callers, *agents):
                proc.terminate()  # SIGTERM: they leave their rooms and report
        arrivals = json.loads(callers.communicate(timeout=60)[0].strip().splitlines()[-1])
        tallies = [json.loads(agent.communicate(timeout=60)[0].strip().splitlines()[-1])
                   for agent in agents]
    in_window = [sum(start <= t < end for t in times) for times in arrivals.values()]
    frames = sum(in_window)
    streams = sum(n > 0 for n in in_window)
    agent_cpu = sum(b - a for a, b in zip(cpu0, cpu1))
    seconds = end - start
    return {
        "processes": args.processes, "rooms": args.processes * args.rooms,
        "rooms_ready": int(ready[1]) if len(ready) == 2 else 0,
        "rooms_per_node": [sum(h is n for h in hosting) for n in nodes],
        "seconds": round(seconds, 2),
        "streams": streams,
        "echo_frames_per_s": round(frames / seconds, 1),
        "echo_frames_per_s_per_stream_min": round(min(in_window) / seconds, 1) if in_window else 0,
        "agent_cpu_s": round(agent_cpu, 2),
        "cpu_percent_per_stream": round(100 * agent_cpu / seconds / streams, 2) if streams else None,
        "cpu_us_per_frame": round(1e6 * agent_cpu / frames, 1) if frames else None,
        "agent_tallies": tallies,
    }



def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.callers:
        callers_main(json.loads(args.callers))
        return 0
    if args.inside:
        results = inside(args)
        print(json.dumps(results), flush=True)
        return 0
    if os.geteuid() != 0:
        print("bench/cluster.py: needs root (a network namespace, Redis, two livekit-server nodes)",
              file=sys.stderr)
        return 1
    runner.ensure_server_binary()
    env = {**{k: v for k, v in os.environ.items() if k not in runner.PROXY_VARS},
           "RTC_TRIO_REDIS_SERVER": runner.redis_binary(),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with runner.network_namespace() as ns:
        done = subprocess.run([runner.ip_binary(), "netns", "exec", ns.name, sys.executable,
                               __file__, "--inside", *(argv if argv is not None else sys.argv[1:])],
                              env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        return done.returncode
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print(_report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _report(r: dict[str, Any]) -> str:
    return "\n".join([
        f"cluster: 2 nodes, rooms per node {r['rooms_per_node']}; "
        f"{r['processes']} agent processes x {r['rooms'] // r['processes']} rooms",
        f"streams served: {r['streams']} of {r['rooms']} ({r['rooms_ready']} echoing at the "
        f"start; {r['echo_frames_per_s']} echo frames/s reached the callers, the slowest stream "
        f"{r['echo_frames_per_s_per_stream_min']}/s of 100)",
        f"agent CPU: {r['agent_cpu_s']} s in {r['seconds']} s = "
        f"{r['cpu_percent_per_stream']} % of a core per stream, "
        f"{r['cpu_us_per_frame']} us per echoed frame",
    ])


if __name__ == "__main__":
    sys.exit(main())
