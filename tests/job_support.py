"""Toy jobs for the runner's tests (``inspector.jobs.runner``): importable by name in the job's own
process, and let through the runner's check only by the tests' ``toy_jobs`` fixture."""

from __future__ import annotations

import os
import sys
import time

from inspector.errors import InspectorError


def where_am_i(*, task) -> dict:
    """What the job's process looks like from inside: priority, policy, torch threads."""
    import torch

    task.report(("log", "hello from the job"))
    info = {"pid": os.getpid(), "threads": torch.get_num_threads()}
    if hasattr(os, "getpriority"):
        info["nice"] = os.getpriority(os.PRIO_PROCESS, 0)
    if sys.platform.startswith("linux"):
        info["policy"] = os.sched_getscheduler(0)
    return info


def bad_station(*, task) -> None:
    raise InspectorError("station: the test split is empty\nsecond line never shown")


def steps(count: int, *, task) -> int:
    """Report each step; stop early when asked (as the trainer does between batches)."""
    done = 0
    for i in range(count):
        if task.should_stop():
            break
        task.report(("step", i))
        time.sleep(0.02)
        done += 1
    return done
