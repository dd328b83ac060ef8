"""Engineer's jobs in their own low-priority process, paused while the line reports overruns."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import job_support
import pytest

from inspector.jobs import runner
from inspector.jobs.finetune import run_finetune
from inspector.jobs.line_yield import LineYield
from inspector.jobs.priority import background_threads
from inspector.jobs.runner import BackgroundJob, job_target

WAIT_S = 120


@pytest.fixture(autouse=True)
def toy_jobs(monkeypatch):
    """Let the runner start the toy jobs of ``tests/job_support.py`` (it refuses any function
    outside ``inspector.jobs``)."""
    monkeypatch.setattr(runner, "JOB_PACKAGES", (*runner.JOB_PACKAGES, "job_support"))


def test_a_job_is_named_by_its_function_and_the_runner_derives_the_name():
    assert job_target(run_finetune) == "inspector.jobs.finetune:run_finetune"
    assert job_target(job_support.steps) == "job_support:steps"


def _not_a_job(*, task) -> None:
    """A module-level function outside the jobs package."""


@pytest.mark.parametrize(
    "fn",
    [
        lambda *, task: None,  # no name the job's process could import
        functools.partial(job_support.steps, 3),
        _not_a_job,  # importable, but not in inspector.jobs
        BackgroundJob.cancel,  # a method
        "inspector.jobs.finetune:run_finetune",  # the old way: a name in a string
    ],
)
def test_anything_but_a_module_level_function_of_the_jobs_package_is_refused_before_a_spawn(fn):
    running = set(runner._jobs)
    with pytest.raises(ValueError, match="is not a module-level function of inspector.jobs") as refused:
        BackgroundJob(fn)
    assert "\n" not in str(refused.value)
    assert set(runner._jobs) == running  # no process started


def test_the_tests_toy_jobs_are_refused_without_the_fixture(monkeypatch):
    monkeypatch.setattr(runner, "JOB_PACKAGES", ("inspector.jobs",))
    with pytest.raises(ValueError, match="job_support.steps"):
        job_target(job_support.steps)


def test_a_job_runs_in_its_own_process_below_the_line():
    job = BackgroundJob(job_support.where_am_i, line=lambda: 0, threads=1)
    assert job.wait(WAIT_S)
    assert job.error is None, job.error
    info = job.result
    assert info["pid"] != os.getpid() and info["threads"] == 1
    assert job.take() == [("log", "hello from the job")]
    if "nice" in info:
        assert info["nice"] == 19
    if sys.platform.startswith("linux"):
        assert info["policy"] == os.SCHED_IDLE and "SCHED_IDLE" in job.priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads thread policies from /proc")
def test_a_job_goes_below_a_line_that_starts_while_it_runs():
    line: list[int | None] = [None]
    job = BackgroundJob(job_support.steps, 100_000, line=lambda: line[0])
    while not job.take():
        job.wait(0.05)
    assert job.priority == "normal priority" and job.threads == background_threads(False)
    assert not _idle_threads(job.pid)
    line[0] = 0  # the operator starts the line
    _wait_for(lambda: job.priority.startswith("idle") and job.threads == background_threads(True))
    assert _idle_threads(job.pid) == _threads(job.pid)  # every thread, not only the main one
    job.stop()
    assert job.wait(WAIT_S) and job.error is None


def test_a_failing_job_is_one_line():
    job = BackgroundJob(job_support.bad_station)
    assert job.wait(WAIT_S)
    assert job.result is None and job.error == "station: the test split is empty"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process state from /proc")
def test_pause_stops_the_process_and_resume_lets_it_finish():
    job = BackgroundJob(job_support.steps, 50)
    seen: list = []
    while not seen:
        seen += job.take()
        job.wait(0.05)
    job.pause()
    assert job.paused
    _wait_for(lambda: _state(job.pid) == "T")  # stopped by SIGSTOP, whatever it was doing
    job.resume()
    assert not job.paused and job.paused_seconds() > 0
    assert job.wait(WAIT_S) and job.result == 50


def test_stop_ends_the_job_at_its_next_step_and_cancel_at_once():
    job = BackgroundJob(job_support.steps, 100_000)
    while not job.take():
        job.wait(0.05)
    job.pause()
    job.stop()  # also when paused: the job resumes to notice, and keeps what it has
    assert job.wait(WAIT_S) and job.error is None and job.result < 100_000
    job = BackgroundJob(job_support.steps, 100_000)
    job.pause()
    job.cancel()  # paused, even before it got going: the process ends, nothing comes back
    assert job.wait(WAIT_S) and job.error == "cancelled" and job.result is None
    assert not job.paused


def test_a_measuring_job_goes_below_the_line_but_is_never_paused_by_it():
    counter = iter(range(1_000_000))  # a line that overruns every time it is asked
    job = BackgroundJob(job_support.steps, 30, line=lambda: next(counter), pause_for_line=False)
    assert job.wait(WAIT_S) and job.result == 30
    assert job.policy.pauses == 0 and job.paused_seconds() == 0 and job.priority != "normal priority"


def test_line_yield_pauses_at_an_overrun_and_holds_longer_when_it_comes_back():
    policy = LineYield(hold_s=2.0, max_hold_s=8.0, relapse_s=10.0, grace_s=1.0, cooldown_s=30.0)
    assert policy.update(None, 0.0) is None  # no line: nothing to yield to
    assert policy.update(3, 1.0) is None  # overruns from before the job: not ours
    assert policy.update(4, 2.0) == "pause" and policy.hold_s == 2.0
    assert policy.update(4, 2.5) is None
    assert policy.update(5, 2.8) is None and policy.until == 4.8  # the queue still clearing: hold on
    assert policy.update(5, 4.8) == "resume"
    assert policy.update(6, 6.0) == "pause" and policy.hold_s == 4.0  # relapse: hold doubles
    assert policy.update(6, 10.0) == "resume"
    assert policy.update(7, 11.0) == "pause" and policy.hold_s == 8.0
    assert policy.update(7, 19.0) == "resume"
    assert policy.update(8, 40.0) == "pause" and policy.hold_s == 2.0  # long quiet: back to short
    assert policy.update(0, 41.0) is None  # new shift: counters reset, nothing new
    assert policy.update(None, 41.5) == "resume"  # line stopped: run freely
    assert policy.pauses == 4 and policy.overruns_seen == 5 and not policy.line_overloaded(41.5)


def test_a_line_late_while_the_job_waits_is_reported_and_still_comes_first():
    policy = LineYield(hold_s=2.0, grace_s=1.0, cooldown_s=30.0)
    assert policy.update(0, 0.0) is None
    assert policy.update(1, 1.0) == "pause"
    assert policy.update(2, 1.5) is None and not policy.line_overloaded(1.5)  # queued before the pause
    assert policy.update(3, 2.5) is None and policy.line_overloaded(2.5)  # late without the job too
    assert policy.until == 4.5 and policy.update(3, 4.5) == "resume"  # held until the line keeps up
    assert not policy.line_overloaded(33.0)


def test_threads_beside_a_line():
    assert background_threads(True, 2) == 1 and background_threads(True, 8) == 4
    assert background_threads(False, 2) == 2


def _wait_for(condition) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _threads(pid: int) -> set[int]:
    return {int(t) for t in os.listdir(f"/proc/{pid}/task")}


def _idle_threads(pid: int) -> set[int]:
    idle = set()
    for tid in _threads(pid):
        try:
            if os.sched_getscheduler(tid) == os.SCHED_IDLE:
                idle.add(tid)
        except ProcessLookupError:
            pass
    return idle
