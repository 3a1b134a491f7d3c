"""Mutation check: each house rule of DESIGN.md has a test that goes red when the code breaks it.

Every mutant below is a small deliberate defect in a copy of the project; the tests named with
it must fail on that copy (and pass on the real code, which the rest of the suite shows). A
mutant that survives means a guarantee nobody would notice losing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    rule: str
    path: str  # relative to the project root
    old: str  # exact text, found once
    new: str
    tests: tuple[str, ...]  # pytest node ids that must fail

    def __str__(self) -> str:
        return self.rule


MUTANTS = [
    Mutant("1 scope: a stream's route outlives its block", "rtc_trio/_stream.py",
           "        self._sub.close()  # from here on nothing writes to the eventfd\n", "",
           ("tests/test_lifecycle.py::test_nothing_of_a_stream_outlives_its_block",)),
    Mutant("2 handles: a released handle stays counted", "rtc_trio/_handles.py",
           "        _held.remove(handle_id)\n", "        _held.__contains__(handle_id)\n",
           ("tests/test_native.py::test_live_handles_counts_every_native_handle_held",)),
    Mutant("2 handles: a stream's native handle is never released", "rtc_trio/_stream.py",
           "        self._handle.release()  # the native stream stops\n", "",
           ("tests/test_channel_shape.py::test_aclose_wakes_a_blocked_reader_and_releases_buffered_frames",)),
    Mutant("3 routing: parked events never expire", "rtc_trio/_router.py",
           "            if now - since < max_age and _parked_count <= PARK_LIMIT:\n",
           "            if True:\n",
           ("tests/test_lifecycle.py::test_unclaimed_parked_events_expire_and_release_their_handles",)),
    Mutant("4 zero copy: received frames are copied", "rtc_trio/_handles.py",
           "    return np.frombuffer(ffi.buffer(owner, nbytes), dtype=np.uint8)\n",
           "    return np.frombuffer(ffi.buffer(owner, nbytes), dtype=np.uint8).copy()\n",
           ("tests/test_audio.py::test_received_frames_are_views_of_native_memory_until_copied",)),
    Mutant("5 bounded: a router buffer grows past its capacity", "rtc_trio/_router.py",
           "        if len(self._items) >= self.capacity:\n", "        if False:\n",
           ("tests/test_video.py::test_slow_video_consumer_drops_oldest",)),
    Mutant("7 trio: receive returns a buffered frame without a schedule point",
           "rtc_trio/_stream.py", "        if not waited:\n", "        if False:\n",
           ("tests/test_checkpoints.py::test_stream_receive_of_a_buffered_frame_checkpoints",)),
    Mutant("7 trio: a router receive that raced a delivery skips its schedule point",
           "rtc_trio/_router.py", "        if not waited:\n", "        if False:\n",
           ("tests/test_checkpoints.py::test_subscription_receive_checkpoints_when_an_item_arrives_while_it_parks",)),
    Mutant("5 bounded, state kept: the room's route drops its oldest event, a join among them",
           "rtc_trio/_router.py", "            if self._droppable is None:\n",
           "            if True:\n",
           ("tests/test_room_hardening.py::test_room_state_survives_a_burst_it_could_not_read_in_time",)),
    Mutant("5 bounded: the room's route never drops anything", "rtc_trio/_router.py",
           "            if droppable(queued):\n", "            if False:\n",
           ("tests/test_room_hardening.py::test_room_state_survives_a_burst_it_could_not_read_in_time",)),
    Mutant("1 scope: a cancelled publish leaves its track published", "rtc_trio/_participant.py",
           "        self._link.nursery.start_soon(self._unpublish_late, reply)\n",
           "        reply.close()\n",
           ("tests/test_room_hardening.py::test_a_cancelled_publish_leaves_nothing_published",)),
    Mutant("1 scope: a late connect's room is never disconnected", "rtc_trio/_room.py",
           "        req.disconnect.request_async_id = disconnect_id\n        _native.request(req)\n",
           "        req.disconnect.request_async_id = disconnect_id\n",
           ("tests/test_room_hardening.py::test_a_cancelled_connect_whose_room_was_created_is_disconnected",)),
    Mutant("6 errors: the body's exception loses its context to the nursery's group",
           "rtc_trio/_room.py", "        error.__context__ = context\n", "        pass\n",
           ("tests/test_room_hardening.py::test_an_exception_from_the_block_keeps_its_context_and_traceback",)),
    Mutant("6 errors: bools pass as integers", "rtc_trio/_validate.py",
           "    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)\n",
           "    return isinstance(value, (int, np.integer))\n",
           ("tests/test_validate.py",)),
    Mutant("8 native aborts: captures smaller than 4 px are handed over", "rtc_trio/_video_source.py",
           "MIN_CAPTURE_DIMENSION = 4\n", "MIN_CAPTURE_DIMENSION = 1\n",
           ("tests/test_bounds.py::test_bound[capture-3x4]",
            "tests/test_bounds.py::test_bound[capture-17x3]")),
    Mutant("layers: a media module imports the room layer", "rtc_trio/_audio_stream.py",
           "from rtc_trio._track import Track, TrackKind, TrackSource\n",
           "from rtc_trio._track import Track, TrackKind, TrackSource\n"
           "if False:\n    from rtc_trio._participant import RemoteParticipant  # noqa\n",
           ("tests/test_layers.py",)),
]


def _copy_project(dest: Path) -> None:
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".mypy_cache", ".pytest_cache",
                                    "*.egg-info", "build", "_build")
    for name in ("rtc_trio", "tests", "bench", "docs"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _run_tests(root: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=300,
    )


def test_the_named_tests_pass_on_an_unchanged_copy(tmp_path: Path) -> None:
    _copy_project(tmp_path)
    tests = tuple(sorted({test for mutant in MUTANTS for test in mutant.tests}))
    result = _run_tests(tmp_path, tests)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize("mutant", MUTANTS, ids=str)
def test_the_named_tests_catch_the_mutant(mutant: Mutant, tmp_path: Path) -> None:
    _copy_project(tmp_path)
    target = tmp_path / mutant.path
    source = target.read_text()
    assert source.count(mutant.old) == 1, f"mutant text not found once in {mutant.path}"
    target.write_text(source.replace(mutant.old, mutant.new))
    result = _run_tests(tmp_path, mutant.tests)
    assert result.returncode == 1, (
        f"the mutant survived ({mutant.rule}): {' '.join(mutant.tests)} passed on it\n"
        + result.stdout[-2000:])
