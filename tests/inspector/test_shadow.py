"""Shadow mode in the live pipeline: a candidate judges the same frames beside the deployed model,
never changes a verdict row, counts agreements, keeps disagreements with both answers, and is shed
(counted) when it cannot keep up. No timing thresholds: the tests wait on conditions."""

from __future__ import annotations

import threading
import time

import pytest
from ledger_support import BACKENDS, database_url

from inspector.line.demo import demo_model_path
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import Pipeline, PipelineConfig, RunInfo
from inspector.line.shadow import SHADOW_QUEUE, ShadowRunner, agree
from inspector.line.sources.folder_source import FolderSource
from inspector.store import Ledger, ResultFilter
from models.bundle import load_bundle


@pytest.fixture(scope="module")
def engine():
    return InferenceEngine.load(demo_model_path())


@pytest.fixture(scope="module")
def candidate():
    """The demo model with a much stricter UNSURE threshold: the same classes, other verdicts."""
    return InferenceEngine(load_bundle(demo_model_path()), "torch", None, {"unsure_below": 0.9})


@pytest.fixture(params=BACKENDS)
def ledger(request, tmp_path):
    with database_url(request.param, tmp_path) as url, Ledger(url) as opened:
        yield opened


def _wait_for(condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


class Lockstep(FolderSource):
    """Hands out the next frame only once the shadow has dealt with every earlier one, so the
    line never has a backlog and the shadow is never busy: nothing is shed, whatever the speed."""

    def __init__(self, folder, runner: ShadowRunner) -> None:
        super().__init__(folder, fps=None)
        self.runner = runner
        self.given = 0

    def read(self):
        _wait_for(lambda: _handled(self.runner) == self.given)
        frame = super().read()
        if frame is not None:
            self.given += 1
        return frame


class OneAtATime(FolderSource):
    """Hands out the next frame once the line has judged the last: the line never has a backlog."""

    pipeline: Pipeline

    def __init__(self, folder) -> None:
        super().__init__(folder, fps=None)
        self.given = 0

    def read(self):
        _wait_for(lambda: self.pipeline.stats.snapshot().judged == self.given)
        frame = super().read()
        if frame is not None:
            self.given += 1
        return frame


def _handled(runner: ShadowRunner) -> int:
    snap = runner.snapshot()
    return snap.judged + snap.shed


class SlowEngine:
    """A candidate that takes as long as the test says: its first frame waits for ``release``."""

    def __init__(self, inner: InferenceEngine) -> None:
        self.inner = inner
        self.release = threading.Event()
        self.started = threading.Event()
        self.warming = True

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def warm_up(self) -> None:
        self.inner.warm_up()
        self.warming = False

    def infer(self, images, track_maps=False):
        if not self.warming:
            self.started.set()
            self.release.wait()
        return self.inner.infer(images, track_maps)


def _expected(station, engine, candidate) -> dict[int, tuple]:
    """What each engine says about each frame on its own: index → (deployed, candidate)."""
    source = FolderSource(station, fps=None)
    source.open()
    answers = {}
    while (frame := source.read()) is not None:
        decisions = []
        for judge in (engine, candidate):
            out = judge.infer([frame.image])
            decisions.append(judge.rules.decide(out.probabilities[0], out.energies[0]))
        answers[frame.index] = tuple(decisions)
    source.close()
    return answers


def test_shadow_counts_and_stores_what_both_engines_say(tiny_station, ledger, engine, candidate):
    expected = _expected(tiny_station, engine, candidate)
    runner = ShadowRunner(candidate, "strict")
    pipeline = Pipeline(
        Lockstep(tiny_station, runner),
        engine,
        ledger,
        None,
        PipelineConfig(drop_policy="block"),
        RunInfo("shadow-1", lot="S1"),
        shadow=runner,
    )
    pipeline.run()
    snap = runner.snapshot()
    disagreeing = {i for i, (d, c) in expected.items() if not agree(d, c)}
    assert disagreeing, "the strict candidate should disagree somewhere"
    assert snap.shed == 0
    assert snap.judged == len(expected) == 72
    assert snap.judged - snap.agreed == len(disagreeing)

    # The main verdict rows are the deployed engine's own answers, untouched by the shadow.
    rows = ledger.query_results(ResultFilter(run_id=pipeline.run_id), limit=500)
    assert len(rows) == 72
    for row in rows:
        deployed, _ = expected[row["frame_index"]]
        assert (row["verdict"], row["label"]) == (deployed.verdict.value, deployed.label)

    # Disagreements: stored with both answers, one per disagreeing part, shown on the result rows.
    shadowed = ledger.query_results(
        ResultFilter(run_id=pipeline.run_id, shadow_disagreements=True), limit=500
    )
    assert {r["frame_index"] for r in shadowed} == disagreeing
    assert ledger.count_results(ResultFilter(shadow_disagreements=True)) == len(disagreeing)
    for row in shadowed:
        deployed, mine = expected[row["frame_index"]]
        answer = row["shadow"]
        assert answer["model_version_id"] == ledger.model_version_id(candidate.sha256)
        assert (answer["deployed_verdict"], answer["deployed_label"]) == (
            deployed.verdict.value,
            deployed.label,
        )
        assert (answer["verdict"], answer["label"]) == (mine.verdict.value, mine.label)
        assert answer["confidence"] == pytest.approx(mine.confidence, abs=1e-4)
    agreeing = [r for r in rows if r["frame_index"] not in disagreeing]
    assert all(r["shadow"] is None for r in agreeing)

    # The ledger's totals for the candidate equal the runner's, with the confusion over all 72.
    candidate_id = ledger.model_version_id(candidate.sha256)
    totals = ledger.shadow_totals(candidate_id)
    assert (totals["judged"], totals["agreed"], totals["shed"]) == (72, snap.agreed, 0)
    assert totals["disagreements"] == len(disagreeing) and totals["runs"] == 1
    assert sum(sum(row.values()) for row in totals["confusion"]["verdicts"].values()) == 72
    verdict_pairs = {}
    for deployed, mine in expected.values():
        key = (deployed.verdict.value, mine.verdict.value)
        verdict_pairs[key] = verdict_pairs.get(key, 0) + 1
    stored = {(d, c): n for d, row in totals["confusion"]["verdicts"].items() for c, n in row.items()}
    assert stored == verdict_pairs
    assert ledger.runs()[0]["stats"]["shadow"]["disagreed"] == len(disagreeing)


def test_a_slow_shadow_is_shed_and_counted_and_the_line_goes_on(tiny_station, ledger, engine, candidate):
    slow = SlowEngine(candidate)
    runner = ShadowRunner(slow, "slow")
    source = OneAtATime(tiny_station)
    pipeline = source.pipeline = Pipeline(
        source,
        engine,
        ledger,
        None,
        PipelineConfig(drop_policy="block"),
        RunInfo("shadow-2"),
        shadow=runner,
    )
    pipeline.start()
    # The candidate is stuck on its first frame while the line judges every part.
    _wait_for(lambda: pipeline.stats.snapshot().judged == 72)
    assert slow.started.is_set()
    # One frame in the candidate, SHADOW_QUEUE waiting for it: every later one is shed, not queued.
    # (This source hands out the next frame as soon as a part is judged, so now and then a frame is
    # offered while the next one already waits: shed as line_backlog, which is as right.)
    expected_shed = 72 - 1 - SHADOW_QUEUE
    _wait_for(lambda: sum(runner.snapshot().shed_reasons.values()) == expected_shed)
    reasons = runner.snapshot().shed_reasons
    assert set(reasons) <= {"shadow_busy", "line_backlog"} and reasons.get("shadow_busy", 0) > 0
    slow.release.set()
    assert pipeline.wait(120)
    snap = runner.snapshot()
    assert snap.judged + snap.shed == 72  # each part: judged by the shadow, or counted as shed
    assert snap.judged == 1 + SHADOW_QUEUE
    rows = ledger.query_results(ResultFilter(run_id=pipeline.run_id), limit=500)
    assert len(rows) == 72
    totals = ledger.shadow_totals(ledger.model_version_id(candidate.sha256))
    assert (totals["judged"], totals["shed"]) == (snap.judged, snap.shed)


def test_a_stuck_shadow_does_not_hold_up_the_end_of_the_run(tiny_station, ledger, engine, candidate):
    slow = SlowEngine(candidate)  # never released
    runner = ShadowRunner(slow, "stuck")
    runner.close_timeout_s = 0.5
    source = OneAtATime(tiny_station)
    pipeline = source.pipeline = Pipeline(
        source, engine, ledger, None, PipelineConfig(drop_policy="block"), RunInfo("shadow-3"), shadow=runner
    )
    pipeline.run()
    assert ledger.count_results(ResultFilter(run_id=pipeline.run_id)) == 72
    assert any(e.kind == "shadow_stuck" for e in pipeline.events)
    assert ledger.runs()[0]["status"] == "finished"
    slow.release.set()


def test_the_shadow_is_never_offered_a_frame_while_the_line_has_a_backlog(candidate):
    import numpy as np

    from inspector.line.sources.base import Frame
    from inspector.line.verdicts import Decision, Verdict

    runner = ShadowRunner(candidate, "c")
    decision = Decision(Verdict.OK, "x", 0.9, None)
    frame = Frame(0, np.zeros((8, 8), np.uint8))
    assert not runner.offer(frame, decision, backlog=1)
    assert [runner.offer(frame, decision, backlog=0) for _ in range(SHADOW_QUEUE + 1)] == [
        True
    ] * SHADOW_QUEUE + [False]
    assert runner.snapshot().shed_reasons == {"line_backlog": 1, "shadow_busy": 1}
    assert runner.take_update(None) is None  # no ledger run: nothing to write


def test_the_shadow_line_reads_like_the_live_screen():
    from inspector.line.shadow import ShadowSnapshot

    snap = ShadowSnapshot("v3", judged=1204, agreed=1192, shed=3)
    assert snap.line() == "Shadow: v3 — agreement 99.0 % of 1,204, 12 disagreements, 3 shed"
    assert ShadowSnapshot("v3", 0, 0, 5).line() == "Shadow: v3 — nothing judged yet, 5 shed"
