"""Task and job wiring: callbacks heard, the task let go once it answered, and no reference cycle."""

from __future__ import annotations

import gc
import types

import pytest

pytest.importorskip("PySide6")

from ui import workers
from ui.workers import JOB_ERRORS, run_task


def _run(qtbot, fn) -> tuple[workers.Task, list]:
    answers: list = []
    task = run_task(fn, on_done=answers.append, on_failed=answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=30_000)
    assert workers.wait_for_tasks(30_000)
    return task, answers


def _closures_over(task: workers.Task) -> list:
    """Closure cells that hold ``task``: a slot that would keep it in a cycle with its signals."""
    return [r for r in gc.get_referrers(task) if isinstance(r, types.CellType)]


def test_a_task_that_answered_is_let_go_and_no_slot_holds_it(qtbot):
    task, answers = _run(qtbot, lambda: 42)
    assert answers == [42]
    assert task not in workers._running
    assert _closures_over(task) == []


def test_a_task_that_failed_is_let_go_and_no_slot_holds_it(qtbot):
    def fail() -> None:
        raise JOB_ERRORS[0]("no such station")

    task, answers = _run(qtbot, fail)
    assert len(answers) == 1 and "no such station" in answers[0]
    assert task not in workers._running
    assert _closures_over(task) == []


def test_a_task_that_answered_is_freed_not_kept_by_the_thread_pool(qtbot):
    """A started QRunnable subclass stayed owned by the pool for the app's life (PySide 6.11), and
    with it every result and closure of every query a screen ever ran."""
    import weakref

    task, answers = _run(qtbot, lambda: bytearray(1_000_000))
    assert len(answers) == 1
    gone = weakref.ref(task)
    del task, answers
    qtbot.wait(50)  # the release slot has run on the UI thread
    gc.collect()
    assert gone() is None
