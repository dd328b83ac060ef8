"""Verdict rules and the drop-counting frame queue."""

from __future__ import annotations

import numpy as np

from inspector.line.frame_queue import FrameQueue
from inspector.line.live_stats import DriftMonitor
from inspector.line.sources.base import Frame
from inspector.line.verdicts import Verdict, VerdictRules

RULES = VerdictRules(("defect", "ok"), "ok", unsure_below=0.7, ood_energy_above=-1.0)


def test_verdicts_from_probabilities_thresholds_and_energy():
    assert RULES.decide(np.array([0.1, 0.9]), -3.0).verdict is Verdict.OK
    ng = RULES.decide(np.array([0.95, 0.05]), -3.0)
    assert ng.verdict is Verdict.NG and ng.label == "defect"
    assert RULES.decide(np.array([0.4, 0.6]), -3.0).verdict is Verdict.UNSURE
    unfamiliar = RULES.decide(np.array([0.02, 0.98]), -0.5)
    assert unfamiliar.verdict is Verdict.UNSURE and "distribution" in unfamiliar.reason
    assert RULES.decide(np.array([np.nan, 0.5]), None).verdict is Verdict.ERROR


def test_a_set_without_a_normal_class_sorts_confident_parts_as_ok():
    rules = VerdictRules(("bolt", "nut", "washer"), None, unsure_below=0.6)
    decision = rules.decide(np.array([0.1, 0.8, 0.1]), None)
    assert decision.verdict is Verdict.OK and decision.label == "nut"
    assert rules.decide(np.array([0.4, 0.3, 0.3]), None).verdict is Verdict.UNSURE


def _frames(n):
    return [Frame(i, np.zeros((4, 4), np.uint8)) for i in range(n)]


def test_queue_drops_oldest_and_counts_every_drop():
    dropped = []
    q = FrameQueue(3, "oldest", lambda f, r: dropped.append((f.index, r)))
    for frame in _frames(5):
        q.put(frame)
    assert dropped == [(0, "queue_full"), (1, "queue_full")]
    assert [f.index for f in q.get_batch(8, 0.01)] == [2, 3, 4]


def test_queue_newest_policy_rejects_the_arrival():
    dropped = []
    q = FrameQueue(2, "newest", lambda f, r: dropped.append(f.index))
    for frame in _frames(4):
        q.put(frame)
    assert dropped == [2, 3]
    assert [f.index for f in q.get_batch(1, 0.01)] == [0]


def test_queue_batches_only_what_is_waiting_and_finishes_after_close():
    q = FrameQueue(8, "oldest", lambda f, r: None)
    assert q.get_batch(4, 0.01) == []
    for frame in _frames(6):
        q.put(frame)
    assert len(q.get_batch(4, 0.01)) == 4
    q.close()
    assert not q.finished
    assert len(q.get_batch(4, 0.01)) == 2
    assert q.finished


def test_drift_monitor_alarms_and_clears():
    monitor = DriftMonitor(expected_unsure=0.1, window=20)
    messages = [monitor.update("OK") for _ in range(20)]
    assert not any(messages)
    messages = [monitor.update("UNSURE") for _ in range(10)]
    assert any(m and m.startswith("drift:") for m in messages)
    messages = [monitor.update("OK") for _ in range(20)]
    assert any(m and m.startswith("drift cleared") for m in messages)
