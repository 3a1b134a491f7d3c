"""One trio process serving many rooms at once: an echo agent in each room.

    python examples/many_rooms.py --url ws://node-a:7880 [--url ws://node-b:7880] \
        --api-key KEY --api-secret SECRET --rooms lobby-1 lobby-2 lobby-3 [--seconds 60] [--json]

One nursery, one ``rtc.connect`` per room. In each room the agent subscribes to every
participant's microphone and plays it back into the room on a track of its own
(``echo-<identity>``). A room that fails or ends takes only its own tasks with it: it is
logged and joined again after a pause, through the next ``--url`` (in a LiveKit cluster any
node serves any room, so an agent outlives the node it was on), while the others keep
serving. With ``--seconds`` the agent leaves every room after that long (else at Ctrl-C or
SIGTERM); it then prints what it served (one JSON object with ``--json``).

Tokens are made here from the API key and secret (``pip install 'rtc_trio[room]'``); a real
deployment would hand each agent its tokens instead.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import signal
import time
from dataclasses import asdict, dataclass

import trio

import rtc_trio as rtc

RATE = 48000
REJOIN_PAUSE_S = 1.0


@dataclass
class Tally:
    """What this process served, over all its rooms."""

    rooms: int = 0
    streams: int = 0  # echoes running now
    streams_peak: int = 0
    streams_total: int = 0
    frames: int = 0  # frames received and echoed
    room_failures: int = 0


async def echo(room: rtc.Room, track: rtc.RemoteAudioTrack, identity: str, tally: Tally) -> None:
    """Play ``track`` back into ``room`` until it ends (its publisher left or unpublished)."""
    try:
        async with rtc.open_audio_stream(track, sample_rate=RATE, num_channels=1) as stream:
            await play_back(room, stream, identity, tally)
    except trio.ClosedResourceError:
        pass  # the track went before its stream opened: a new subscription comes if it returns


async def play_back(room: rtc.Room, stream: rtc.AudioStream, identity: str, tally: Tally) -> None:
    """Publish ``echo-<identity>`` and feed it what ``stream`` delivers, until the stream ends."""
    async with rtc.open_audio_source(RATE, 1, queue_size_ms=100) as source:
        with rtc.LocalAudioTrack.create(f"echo-{identity}", source) as out:
            publication = await room.local_participant.publish_track(
                out, rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE))
            tally.streams += 1
            tally.streams_total += 1
            tally.streams_peak = max(tally.streams_peak, tally.streams)
            try:
                async for frame in stream:
                    await source.capture_frame(frame)
                    tally.frames += 1
            finally:
                tally.streams -= 1
            if room.connection_state == rtc.ConnectionState.CONNECTED:
                await room.local_participant.unpublish_track(publication)


async def serve_room(url: str, token: str, tally: Tally) -> None:
    """Join one room and echo everyone in it, until the room ends or the task is cancelled."""
    async with rtc.connect(url, token) as room:
        events = room.events()
        tally.rooms += 1
        try:
            async with trio.open_nursery() as nursery:
                async for event in events:  # ends when the room disconnects
                    if (isinstance(event, rtc.TrackSubscribed)
                            and isinstance(event.track, rtc.RemoteAudioTrack)
                            and not event.publication.name.startswith("echo-")):
                        nursery.start_soon(echo, room, event.track,
                                           event.participant.identity, tally)
        finally:
            tally.rooms -= 1


async def keep_serving(urls: list[str], token: str, name: str, tally: Tally) -> None:
    """Serve one room for good: whenever it ends or fails (logged), join it again after a
    pause, through the next URL (any node of a cluster can serve any room)."""
    log = logging.getLogger("many_rooms")
    for attempt in itertools.count():
        url = urls[attempt % len(urls)]
        try:
            await serve_room(url, token, tally)
            log.warning("room %s via %s ended; joining again", name, url)
        except Exception as exc:  # one room's failure (a group, from its nursery) ends only it
            tally.room_failures += 1
            log.warning("room %s via %s failed (%r); joining again", name, url, exc)
        await trio.sleep(REJOIN_PAUSE_S)


async def serve(urls: list[str], tokens: dict[str, str], seconds: float | None,
                tally: Tally) -> None:
    """Serve every room in ``tokens`` (room name -> token) at once, for ``seconds`` or until
    SIGINT/SIGTERM; then leave every room."""
    with trio.move_on_after(math.inf if seconds is None else seconds):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal, nursery.cancel_scope)
            for name, token in tokens.items():
                nursery.start_soon(keep_serving, urls, token, name, tally)


async def stop_on_signal(scope: trio.CancelScope) -> None:
    """Cancel ``scope`` (every room leaves, in order) at the first SIGINT or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def make_tokens(api_key: str, api_secret: str, rooms: list[str], identity: str) -> dict[str, str]:
    """A join token for ``identity`` in each room."""
    from livekit import api

    def token(room: str) -> str:
        grants = api.VideoGrants(room_join=True, room=room)
        return (api.AccessToken(api_key, api_secret).with_identity(identity)
                .with_grants(grants).to_jwt())

    return {room: token(room) for room in rooms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, action="append", dest="urls",
                        help="ws:// or wss:// URL of a LiveKit node (repeat: rejoins rotate)")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--rooms", nargs="+", required=True, help="the room names to serve")
    parser.add_argument("--identity", default="echo-agent")
    parser.add_argument("--seconds", type=float, default=None, help="leave after this long")
    parser.add_argument("--json", action="store_true", help="print the tally as one JSON object")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tally = Tally()
    tokens = make_tokens(args.api_key, args.api_secret, args.rooms, args.identity)
    started, cpu = time.monotonic(), time.process_time()
    trio.run(serve, args.urls, tokens, args.seconds, tally)
    figures = {**asdict(tally), "wall_s": round(time.monotonic() - started, 3),
               "cpu_s": round(time.process_time() - cpu, 3)}
    if args.json:
        print(json.dumps(figures), flush=True)
    else:
        print(f"served {len(tokens)} rooms: {tally.streams_total} streams, {tally.frames} frames "
              f"echoed, {figures['cpu_s']} s of CPU in {figures['wall_s']} s")


if __name__ == "__main__":
    main()
