"""The test command of rtc_trio: ``python tests/run.py [pytest args...]`` (default: the tests dir).

As root, and unless ``RTC_TRIO_TEST_URL`` points at a server already, it runs pytest inside a
network namespace of its own next to a real livekit-server that listens on the namespace's veth
address; everything is torn down afterwards. It also provides ``redis-server`` (apt-get, before
entering the namespace, which has no way out) for the cluster tests, which start Redis and
livekit-server nodes of their own (tests/cluster.py). Otherwise it runs plain pytest, where the
tests that need a server skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from xml.etree import ElementTree

SERVER_MODULE = "github.com/livekit/livekit-server/cmd/server@v1.13.5"
HTTP_PORT = 7880
RTC_TCP_PORT = 7881
UDP_PORTS = (50000, 50100)
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 3.0
NS_PREFIX = "rtctrio-"
TESTS_DIR = Path(__file__).resolve().parent
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

# Runs inside the namespace: polls the server's HTTP port until it answers 200 or time runs out.
PROBE = """
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
while True:
    try:
        with opener.open(url, timeout=1) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.05)
"""


class SetupError(Exception):
    """The test server could not be provided."""


@dataclass(frozen=True)
class Namespace:
    """A network namespace with one veth pair whose two ends both live inside it."""

    name: str
    server_addr: str
    client_addr: str


@dataclass(frozen=True)
class LiveServer:
    """A running livekit-server."""

    pid: int
    url: str
    api_key: str
    api_secret: str


def cache_dir() -> Path:
    """Where built artefacts are kept: ``$RTC_TRIO_CACHE`` or ``~/.cache/rtc_trio``."""
    return Path(os.environ.get("RTC_TRIO_CACHE") or Path.home() / ".cache" / "rtc_trio")


def ensure_server_binary() -> Path:
    """Return the cached livekit-server binary, building it with ``go install`` if missing."""
    binary = cache_dir() / "bin" / "server"
    if os.access(binary, os.X_OK):
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        raise SetupError(f"{binary} is missing and there is no `go` to build it with")
    print(f"run.py: building livekit-server: GOBIN={binary.parent} go install {SERVER_MODULE}",
          flush=True)
    started = time.monotonic()
    env = {**os.environ, "GOBIN": str(binary.parent)}
    if subprocess.run([go, "install", SERVER_MODULE], env=env).returncode != 0:
        raise SetupError("building livekit-server failed")
    print(f"run.py: built {binary} in {time.monotonic() - started:.0f} s", flush=True)
    return binary


def _find(name: str) -> str | None:
    """The path of executable ``name`` on PATH or in the sbin/bin directories, if any."""
    return shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
         if os.access(p := f"{d}/{name}", os.X_OK)), None)


def _apt_installed(name: str, package: str) -> str:
    """Return the path of executable ``name``, installing ``package`` with apt-get if missing."""
    found = _find(name)
    if found:
        return found
    print(f"run.py: installing {package} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        subprocess.run(command, env=env, check=False)
    found = _find(name)
    if not found:
        raise SetupError(f"`{name}` ({package}) is missing and could not be installed")
    return found


def ip_binary() -> str:
    """Return the path of iproute2's ``ip``, installing iproute2 with apt-get if it is missing."""
    return _apt_installed("ip", "iproute2")


def redis_binary() -> str:
    """Return the path of ``redis-server`` (for the cluster tests), installing it if missing."""
    return _apt_installed("redis-server", "redis-server")


def _ip(*args: str) -> None:
    """Run an ``ip`` command, raising SetupError with its stderr on failure."""
    done = subprocess.run([ip_binary(), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _ignore_signals() -> None:
    """Let cleanup finish even if SIGINT or SIGTERM arrive again."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def _die_with_parent() -> None:
    """Child-side hook: have the kernel SIGKILL the child should run.py die without cleanup."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _remove_stale_namespaces() -> None:
    """Delete namespaces left behind by runs whose process no longer exists (e.g. SIGKILLed)."""
    listing = subprocess.run([ip_binary(), "netns", "list"], capture_output=True, text=True)
    for match in re.finditer(rf"^({NS_PREFIX}(\d+))\b", listing.stdout, re.MULTILINE):
        if not Path(f"/proc/{match[2]}").exists():
            subprocess.run([ip_binary(), "netns", "delete", match[1]], check=False)


@contextlib.contextmanager
def network_namespace() -> Iterator[Namespace]:
    """Create a namespace with ``lo`` and a veth pair on a random 10.213.X.0/24; delete it after."""
    _remove_stale_namespaces()
    subnet = f"10.213.{random.randrange(256)}"
    ns = Namespace(f"{NS_PREFIX}{os.getpid()}", f"{subnet}.1", f"{subnet}.2")
    _ip("netns", "add", ns.name)
    try:
        _ip("-n", ns.name, "link", "set", "lo", "up")
        _ip("-n", ns.name, "link", "add", "rt0", "type", "veth", "peer", "name", "rt1")
        _ip("-n", ns.name, "addr", "add", f"{ns.server_addr}/24", "dev", "rt0")
        _ip("-n", ns.name, "addr", "add", f"{ns.client_addr}/24", "dev", "rt1")
        _ip("-n", ns.name, "link", "set", "rt0", "up")
        _ip("-n", ns.name, "link", "set", "rt1", "up")
        yield ns
    finally:
        _ignore_signals()
        subprocess.run([ip_binary(), "netns", "delete", ns.name], check=False)


def _stop(proc: subprocess.Popen[bytes], grace: float = 0.0) -> None:
    """Wait ``grace`` s for ``proc`` to exit, then SIGTERM it, then SIGKILL it."""
    for timeout, next_step in ((grace, proc.terminate), (STOP_GRACE_S, proc.kill)):
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            next_step()
    proc.wait()


@dataclass(frozen=True)
class Ports:
    """The ports one livekit-server listens on: HTTP/websocket, ICE over TCP, the UDP range."""

    http: int
    rtc_tcp: int
    udp: tuple[int, int]


def default_ports() -> Ports:
    """The ports of the shared test server (read at call time: a test may patch them)."""
    return Ports(HTTP_PORT, RTC_TCP_PORT, UDP_PORTS)


def _config(addr: str, ports: Ports, extra: str = "") -> str:
    """The server's YAML config; STUN points at the namespace too, never at a public server.
    ``extra`` is appended as top-level YAML (``redis:``, ``region:``, ...)."""
    return (f"port: {ports.http}\n"
            "rtc:\n"
            f"  tcp_port: {ports.rtc_tcp}\n"
            f"  port_range_start: {ports.udp[0]}\n"
            f"  port_range_end: {ports.udp[1]}\n"
            "  use_external_ip: false\n"
            f"  stun_servers: ['{addr}:3478']\n" + extra)


def new_keys() -> tuple[str, str]:
    """A fresh API key and secret."""
    return f"API{secrets.token_hex(6)}", f"secret{secrets.token_hex(24)}"


@contextlib.contextmanager
def livekit_server(ns: str, addr: str, binary: Path, log: Path, *, ports: Ports | None = None,
                   keys: tuple[str, str] | None = None,
                   extra_config: str = "") -> Iterator[LiveServer]:
    """Run livekit-server in namespace ``ns`` on ``addr``, logging to ``log``; stop it after.

    ``ports`` default to the shared server's, ``keys`` to fresh ones; ``extra_config`` is
    appended to the config (the nodes of a cluster share keys and a ``redis:`` section)."""
    ports = ports or default_ports()
    key, secret = keys or new_keys()
    command = [ip_binary(), "netns", "exec", ns, str(binary), "--bind", addr, "--node-ip", addr,
               "--keys", f"{key}: {secret}", "--config-body", _config(addr, ports, extra_config)]
    started = time.monotonic()
    with open(log, "wb") as log_file:
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                  stderr=subprocess.STDOUT, process_group=0,
                                  env={"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())},
                                  preexec_fn=_die_with_parent)
    try:
        _wait_until_ready(server, ns, f"http://{addr}:{ports.http}/")
        print(f"run.py: livekit-server {addr}:{ports.http} (pid {server.pid}, namespace {ns}) "
              f"ready in {time.monotonic() - started:.2f} s", flush=True)
        yield LiveServer(server.pid, f"ws://{addr}:{ports.http}", key, secret)
    finally:
        _ignore_signals()
        _stop(server)


def _wait_until_ready(server: subprocess.Popen[bytes], ns: str, url: str) -> None:
    """Return once ``url`` answers inside ``ns``; raise SetupError if the server dies or is slow."""
    probe = subprocess.Popen([ip_binary(), "netns", "exec", ns, sys.executable, "-c", PROBE,
                              url, str(READY_TIMEOUT_S)])
    try:
        while probe.poll() is None:
            if server.poll() is not None:
                raise SetupError(f"livekit-server exited with code {server.returncode}")
            time.sleep(0.05)
    finally:
        _stop(probe)
    if probe.returncode != 0:
        raise SetupError(f"livekit-server did not answer {url} within {READY_TIMEOUT_S:.0f} s")


def run_pytest(prefix: Sequence[str], args: Sequence[str], env: dict[str, str],
               report: Path | None = None) -> int:
    """Run ``<prefix> python -m pytest <args>``; return its exit code (5, nothing ran, becomes 1).

    With ``report``, pytest also writes its JUnit XML there (read back by ``_print_failures``).
    """
    extra = [f"--junitxml={report}"] if report is not None else []
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "pytest", *args, *extra], env=env,
                            preexec_fn=_die_with_parent)
    try:
        code = proc.wait()
    except BaseException as exc:
        # On Ctrl-C pytest got SIGINT too: give it a moment to report before stopping it.
        _stop(proc, grace=5.0 if isinstance(exc, KeyboardInterrupt) else 0.0)
        raise
    if code < 0:
        return 128 - code
    return 1 if code == 5 else code


def _print_log_tail(log: Path, lines: int = 30, width: int = 400) -> None:
    """Print the end of the server log to stderr, long lines cut to ``width``."""
    if log.exists():
        tail = [line[:width] for line in log.read_text(errors="replace").splitlines()[-lines:]]
        print(f"run.py: last {len(tail)} lines of {log.name}:", *tail, sep="\n", file=sys.stderr)


def _print_failures(report: Path, limit: int = 6000) -> None:
    """Print, last of all, each failed test and the end of its traceback (``limit`` characters
    in all): a CI that keeps only the end of the output still names what failed."""
    try:
        cases = ElementTree.parse(report).getroot().iter("testcase")
    except (OSError, ElementTree.ParseError):
        return
    failed = [(case, bad) for case in cases for bad in case
              if bad.tag in ("failure", "error")]
    per_case = limit // max(1, len(failed))
    for case, bad in failed:
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        text = (bad.text or bad.get("message") or "")[-per_case:]
        print(f"run.py: {bad.tag.upper()} {name}\n{text}", file=sys.stderr)
    if failed:
        names = ", ".join(case.get("name", "") for case, _ in failed)
        print(f"run.py: {len(failed)} failed: {names}", file=sys.stderr)


def _keep(files: Sequence[Path]) -> None:
    """Copy a failed run's files to ``$RTC_TRIO_KEEP_FAILED`` (default
    /var/tmp/rtc_trio-failed-runs/<time>) so a clean checkout's failure can be read later."""
    root = Path(os.environ.get("RTC_TRIO_KEEP_FAILED", "/var/tmp/rtc_trio-failed-runs"))
    where = root / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        where.mkdir(parents=True, exist_ok=True)
        for file in files:
            if file.exists():
                shutil.copy(file, where / file.name)
    except OSError as exc:
        print(f"run.py: could not keep the failed run's files: {exc}", file=sys.stderr)
        return
    print(f"run.py: the failed run's files are in {where}", file=sys.stderr)


def _redis_env() -> dict[str, str]:
    """``RTC_TRIO_REDIS_SERVER`` for the cluster tests, installing redis-server here if missing
    (inside the namespace there is no network to install it from)."""
    try:
        return {"RTC_TRIO_REDIS_SERVER": redis_binary()}
    except SetupError as exc:
        print(f"run.py: warning: {exc}; the cluster tests will fail", file=sys.stderr, flush=True)
        return {}


def _this_checkout_first(env: dict[str, str]) -> dict[str, str]:
    """PYTHONPATH with this checkout first, once its extension is built: the processes the
    tests start (peers, fuzz workers) then run the code under test, not whatever checkout
    the package was last installed from (``pip install -e`` of another clone)."""
    root = TESTS_DIR.parent
    if not any((root / "rtc_trio").glob("_ffi*.so")):
        return {}
    paths = [str(root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def _run_with_server(args: Sequence[str]) -> int:
    """Run pytest in a fresh namespace next to a fresh livekit-server."""
    binary, redis = ensure_server_binary(), _redis_env()
    with tempfile.TemporaryDirectory(prefix="rtc_trio-") as tmp, network_namespace() as ns:
        log, report, code = Path(tmp) / "livekit-server.log", Path(tmp) / "pytest.xml", 1
        try:
            with livekit_server(ns.name, ns.server_addr, binary, log) as server:
                env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
                env.update(RTC_TRIO_TEST_URL=server.url, RTC_TRIO_TEST_API_KEY=server.api_key,
                           RTC_TRIO_TEST_API_SECRET=server.api_secret,
                           RTC_TRIO_REQUIRE_SERVER="1", **redis)
                env.update(_this_checkout_first(env))
                code = run_pytest([ip_binary(), "netns", "exec", ns.name], args, env, report)
                return code
        finally:
            if code != 0:
                _keep([log, report])
                _print_log_tail(log)
                _print_failures(report)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP handler: unwind (running every cleanup) and exit with 128 + signum."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the test suite; return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv) or [str(TESTS_DIR)]
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    try:
        if os.environ.get("RTC_TRIO_TEST_URL") or os.geteuid() != 0:
            if not os.environ.get("RTC_TRIO_TEST_URL"):
                print("run.py: not root, so no LiveKit server: tests that need one skip", flush=True)
            return run_pytest([], args, {**os.environ, **_this_checkout_first(dict(os.environ))})
        return _run_with_server(args)
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        return 130
    except SetupError as exc:
        print(f"run.py: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
