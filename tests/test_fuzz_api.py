"""The seeded fuzz of the media layer's public API (tests/fuzz_api.py) finds nothing.

About 2,000 cases, mostly supported values: every supported one must work (streams deliver),
every other must be refused with ValueError/TypeError, none may abort the process or leave a
native handle behind. Cases run in worker subprocesses (40 a batch, two at a time); a batch
whose worker dies is re-run case by case, so a failure names its input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests import fuzz_api

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("RTC_TRIO_FUZZ_SEED", "20240612"))
CASES = 2000
BUDGET_S = 150.0  # batches not started by then are skipped (and reported)


@pytest.fixture
def this_checkout() -> Iterator[None]:
    """Workers import rtc_trio from this checkout."""
    before = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), before) if p)
    try:
        yield
    finally:
        os.environ["PYTHONPATH"] = before


def test_the_media_api_fuzz_finds_nothing(this_checkout: None) -> None:
    cases = fuzz_api.generate(SEED, CASES)
    results, skipped = fuzz_api.run_cases(cases, jobs=2, batch=40, budget=BUDGET_S)
    assert results, "the time budget ran out before the first batch"
    failures = [f"{why}: {fuzz_api.show(r.case)}\n    -> {r.outcome}"
                for r in results if (why := fuzz_api.judge(r)) is not None]
    assert not failures, f"seed {SEED}, {len(failures)} failure(s):\n" + "\n".join(failures)
    supported = sum(fuzz_api.supported(r.case) for r in results)
    assert supported > len(results) // 2  # mostly valid values, or the fuzz tests little
    print(f"seed {SEED}: {len(results)} cases, {supported} supported, {skipped} skipped")


def test_a_worker_that_dies_is_reported_naming_the_case(this_checkout: None) -> None:
    # The fuzz is only as good as its report of an abort: a case that kills its worker
    # (here by os.abort(), as a native CHECK does) is named, the others still run.
    fine = {"op": "audio_frame", "shape": [480], "rate": 48000}
    dies = {"op": "abort"}
    results = fuzz_api.run_batch([fine, dies, fine])
    assert [r.outcome for r in results] == ["ok", results[1].outcome, "ok"]
    assert results[1].case == dies and results[1].outcome.startswith("ABORT (rc -6)")


def test_a_late_abort_is_pinned_on_the_case_that_caused_it(this_checkout: None) -> None:
    # A native thread may abort after its case returned, while the next case runs: the
    # next case alone does not die, so the batch's earlier cases are re-run one by one.
    fine = {"op": "audio_frame", "shape": [480], "rate": 48000}
    late = {"op": "abort", "after": 0.3}
    slow = {"op": "sleep", "seconds": 2.0}
    results = fuzz_api.run_batch([fine, late, slow])
    outcomes = {fuzz_api.show(r.case): r.outcome for r in results}
    assert outcomes[fuzz_api.show(late)].startswith("ABORT"), outcomes
    assert outcomes[fuzz_api.show(fine)] == "ok"
    assert not outcomes[fuzz_api.show(slow)].startswith("ABORT"), outcomes


def test_a_worker_that_dies_at_exit_is_a_failure(this_checkout: None) -> None:
    # Every case returned, then the interpreter's exit killed the worker (a native thread
    # still running while the process ends): still a failure, said to be at exit.
    fine = {"op": "audio_frame", "shape": [480], "rate": 48000}
    dies_at_exit = {"op": "abort", "at_exit": True}
    results = fuzz_api.run_batch([fine, dies_at_exit])
    assert results[0].outcome == "ok"
    assert results[1].aborted and "at exit" in results[1].outcome, results[1].outcome
    assert fuzz_api.judge(results[1]) == "the process aborted"
