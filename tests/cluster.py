"""A LiveKit cluster for the tests: one Redis server and livekit-server nodes that share it.

Everything runs inside the network namespace ``tests/run.py`` made (the tests run in it as
root), on addresses of a veth pair added for the cluster: the Redis server and each node have
an address of their own, and no traffic leaves the namespace. ``redis-server`` is installed by
``tests/run.py`` (outside the namespace, where the package manager is reachable) and named by
``RTC_TRIO_REDIS_SERVER``.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import run as runner
from tests.server import TestServer

REDIS_PORT = 6379
LINK = ("rcl0", "rcl1")  # the cluster's veth pair, inside the namespace
READY_TIMEOUT_S = 15.0
NODE_ID = re.compile(r'"nodeID": "(ND_\w+)"')


@dataclass(frozen=True)
class Node:
    """One livekit-server of the cluster: the server (url, keys, pid), its address and node id."""

    server: TestServer
    address: str
    node_id: str
    log: Path


@dataclass(frozen=True)
class Cluster:
    """The running cluster: its Redis address and its nodes, which share API keys."""

    redis_address: str
    nodes: tuple[Node, ...]

    def node_hosting(self, room: str) -> Node | None:
        """The node Redis says hosts ``room`` (the ``room_node_map`` hash), if any."""
        node_id = redis_command(self.redis_address, "HGET", "room_node_map", room)
        return next((node for node in self.nodes if node.node_id == node_id), None)

    def create_room(self, room: str, on: Node, via: Node | None = None) -> None:
        """Create ``room`` hosted on node ``on`` (RoomService.CreateRoom with ``node_id``), asking
        node ``via`` (default: ``on``). Rooms otherwise land on a node chosen at random."""
        server = (via or on).server
        token = server.token("rtc-trio-tests-admin", room, room_create=True)
        request = urllib.request.Request(
            f"{server.http_url}/twirp/livekit.RoomService/CreateRoom",
            data=json.dumps({"name": room, "node_id": on.node_id, "empty_timeout": 60}).encode(),
            method="POST", headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            response.read()


def node_ports(index: int) -> runner.Ports:
    """Node ``index``'s ports: of its own (the shared server and test_room_server_killed's use
    others), so that no two servers in the namespace can collide whatever they bind."""
    udp = 50400 + 200 * index
    return runner.Ports(7890 + 2 * index, 7891 + 2 * index, (udp, udp + 100))


def redis_command(address: str, *args: str) -> str:
    """Run one command with ``redis-cli`` against the cluster's Redis; its raw reply."""
    cli = str(Path(redis_server_binary()).with_name("redis-cli"))
    done = subprocess.run([cli, "-h", address, "-p", str(REDIS_PORT), "--raw", *args],
                          capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise runner.SetupError(f"redis-cli {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def redis_server_binary() -> str:
    """``$RTC_TRIO_REDIS_SERVER`` (set by tests/run.py), or redis-server on this machine."""
    found = os.environ.get("RTC_TRIO_REDIS_SERVER") or runner._find("redis-server")
    if not found:
        raise runner.SetupError("no redis-server: tests/run.py installs it (apt-get) before it "
                                "starts the tests")
    return found


def unavailable() -> str | None:
    """Why a cluster cannot run here (None if it can): it needs root inside tests/run.py's
    namespace, and redis-server."""
    if not current_namespace():
        return "a cluster needs root, inside the namespace tests/run.py makes"
    try:
        redis_server_binary()
    except runner.SetupError as exc:
        return str(exc)
    return None


def current_namespace() -> str:
    """The name of the network namespace this process runs in ('' if none or not root)."""
    if os.geteuid() != 0:
        return ""
    done = subprocess.run([runner.ip_binary(), "netns", "identify"], capture_output=True, text=True)
    name = done.stdout.strip()
    return name if name.startswith(runner.NS_PREFIX) else ""


@contextlib.contextmanager
def _cluster_link(count: int) -> Iterator[list[str]]:
    """A veth pair in this namespace with ``count`` addresses on a random 10.214.X.0/24 (the
    first on one end, the rest on the other); deleted after."""
    subnet = f"10.214.{random.randrange(256)}"
    addresses = [f"{subnet}.{i + 1}" for i in range(count)]
    runner._ip("link", "add", LINK[0], "type", "veth", "peer", "name", LINK[1])
    try:
        for i, address in enumerate(addresses):
            runner._ip("addr", "add", f"{address}/24", "dev", LINK[min(i, 1)])
        for end in LINK:
            runner._ip("link", "set", end, "up")
        yield addresses
    finally:
        subprocess.run([runner.ip_binary(), "link", "delete", LINK[0]], check=False)


@contextlib.contextmanager
def redis_server(address: str, log: Path) -> Iterator[int]:
    """Run redis-server on ``address`` (no persistence), logging to ``log``; yield its pid."""
    command = [redis_server_binary(), "--bind", address, "--port", str(REDIS_PORT), "--save", "",
               "--appendonly", "no", "--protected-mode", "no", "--dir", str(log.parent)]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT, preexec_fn=runner._die_with_parent)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _redis_ping(address) != "PONG":
            if proc.poll() is not None or time.monotonic() > deadline:
                raise runner.SetupError(f"redis-server did not start on {address} (see {log})")
            time.sleep(0.05)
        yield proc.pid
    finally:
        runner._stop(proc)


def _redis_ping(address: str) -> str:
    try:
        return redis_command(address, "PING")
    except (runner.SetupError, subprocess.TimeoutExpired):
        return ""


def _node_id(log: Path) -> str:
    """The node id livekit-server logged when it started."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        found = NODE_ID.search(log.read_text(errors="replace"))
        if found:
            return found[1]
        time.sleep(0.05)
    raise runner.SetupError(f"no node id in {log}")


@contextlib.contextmanager
def _restored_signals() -> Iterator[None]:
    """tests/run.py's cleanups ignore SIGINT/SIGTERM/SIGHUP for its own sake: undo that."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def livekit_cluster(log_dir: Path, nodes: int = 2, shared_redis: bool = True) -> Iterator[Cluster]:
    """Redis and ``nodes`` livekit-server nodes sharing it (each its own address and ports).

    With ``shared_redis=False`` the nodes get no ``redis:`` section: each is a cluster of one
    (what a misconfigured deployment looks like). Raises ``SetupError`` when it cannot run
    here (see :func:`unavailable`).
    """
    reason = unavailable()
    if reason:
        raise runner.SetupError(reason)
    namespace = current_namespace()
    binary = runner.ensure_server_binary()
    keys = runner.new_keys()
    with _restored_signals(), _cluster_link(1 + nodes) as addresses, \
            redis_server(addresses[0], log_dir / "redis.log"), contextlib.ExitStack() as stack:
        config = f"redis:\n  address: {addresses[0]}:{REDIS_PORT}\n" if shared_redis else ""
        started: list[Node] = []
        for index, address in enumerate(addresses[1:]):
            log = log_dir / f"node-{index}.log"
            live = stack.enter_context(runner.livekit_server(
                namespace, address, binary, log, ports=node_ports(index), keys=keys,
                extra_config=config))
            server = TestServer(live.url, live.api_key, live.api_secret, live.pid)
            started.append(Node(server, address, _node_id(log), log))
        yield Cluster(addresses[0], tuple(started))
