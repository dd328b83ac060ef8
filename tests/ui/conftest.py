"""Between two screen tests: the worker threads a test started end, and the garbage it left is
collected here, at a quiet moment. Left to chance, the collector ran inside a later test's event
dispatch and deleted a Qt object there (a segfault, or a hang with a worker waiting for the GIL)."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def _settle_between_tests(qapp):
    yield
    from ui.workers import wait_for_tasks

    wait_for_tasks(60_000)
    qapp.processEvents()
    gc.collect()
