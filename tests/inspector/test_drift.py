"""Drift watch: input statistics against a reference, rates, golden parts — alone and on a real line."""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
from conftest import make_station
from tests_support import always_bundle
from typer.testing import CliRunner

from data.image_stats import reference_statistics
from data.images import read_image
from data.station import load_station
from inspector.cli import app
from inspector.errors import InspectorError
from inspector.line.drift import DriftConfig, DriftWatch, InputMonitor, RateMonitor
from inspector.line.golden import Baselines, check_golden, load_golden
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import Pipeline, PipelineConfig
from inspector.line.sources.simulated import SimulatedStation
from inspector.settings import Settings
from inspector.store import Ledger, ResultFilter
from models.bundle import load_bundle

CLASSES = ["ok", "scratch", "spot"]


def _wait_for(condition, timeout_s: float = 120.0) -> None:
    """Poll ``condition`` until it holds (the test waits for a state, never for a guessed time)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the line"
        time.sleep(0.01)


@pytest.fixture
def station(tmp_path):
    return load_station(make_station(tmp_path / "station", per_class=30))


def _frames(source: SimulatedStation, count: int):
    for _ in range(count):
        yield source.read().image


# -- input statistics ---------------------------------------------------------------------------


def test_no_input_alarm_on_the_reference_distribution_and_an_alarm_after_a_lamp_change(station):
    reference = reference_statistics([read_image(s.path) for s in station.split("train")])
    monitor = InputMonitor(reference, DriftConfig(window=40), side=reference.side)
    source = SimulatedStation(station, split="test", fps=None)
    source.open()
    as_trained = [e for image in _frames(source, 200) for e in monitor.update(_values(image, reference.side))]
    assert [level for level, _ in as_trained if level == "alarm"] == []

    source.set_profile("lighting", 3)  # the simulated station's lamp changes
    after = [e for image in _frames(source, 120) for e in monitor.update(_values(image, reference.side))]
    alarms = [message for level, message in after if level == "alarm"]
    assert alarms, after
    assert all(m.startswith("input drift:") and "training" in m for m in alarms)
    assert monitor.alarmed


def test_without_a_training_reference_the_runs_first_frames_are_the_reference(station):
    monitor = InputMonitor(None, DriftConfig(window=40, reference_frames=60), side=128)
    assert monitor.describe() == "no training reference: watching against the run's first 60 frames"
    source = SimulatedStation(station, split="test", fps=None)
    source.open()
    events = [e for image in _frames(source, 200) for e in monitor.update(_values(image, 128))]
    assert [m for level, m in events if level == "alarm"] == []
    assert any("input reference taken from the run's first 60 frames" in m for _, m in events)
    assert monitor.reference is not None and monitor.reference.source == "run"
    source.set_profile("lighting", 3)
    after = [e for image in _frames(source, 120) for e in monitor.update(_values(image, 128))]
    assert any(level == "alarm" and "the run's first frames" in m for level, m in after)


def _values(image, side):
    from data.image_stats import image_statistics

    return image_statistics(image, side)


# -- rates ----------------------------------------------------------------------------------------


def _rate_engine(**thresholds):
    return SimpleNamespace(
        thresholds={"val_unsure_rate": 0.05, **thresholds}, rules=SimpleNamespace(ood_energy_above=1.0)
    )


def test_rates_stay_quiet_on_familiar_parts_and_alarm_on_ood_low_confidence_and_unsure():
    monitor = RateMonitor(_rate_engine(val_mean_confidence=0.9), DriftConfig(window=50))
    quiet = [e for _ in range(100) for e in monitor.update("OK", 0.9, 0.0)]
    assert quiet == []
    assert monitor.value("confidence") == pytest.approx(0.9)
    assert monitor.value("ood_rate") == 0.0 and monitor.value("unsure_rate") == 0.0

    events = [e for _ in range(100) for e in monitor.update("UNSURE", 0.55, 2.0)]
    messages = [m for level, m in events if level == "alarm"]
    assert any("out of distribution" in m for m in messages)
    assert any("mean confidence" in m and "validation 90%" in m for m in messages)
    assert any("UNSURE" in m for m in messages)
    assert monitor.alarmed == {"ood_rate", "confidence"} and monitor.unsure.alarmed

    cleared = [e for _ in range(100) for e in monitor.update("OK", 0.9, 0.0)]
    assert sum(1 for level, m in cleared if level == "info" and m.startswith("drift cleared")) == 3


def test_a_bundle_without_a_validation_confidence_is_held_against_the_runs_first_parts():
    monitor = RateMonitor(_rate_engine(), DriftConfig(window=20, reference_frames=30))
    assert monitor.band("confidence").centre is None
    assert [e for _ in range(30) for e in monitor.update("OK", 0.8, 0.0)] == []
    assert monitor.confidence_ref == pytest.approx(0.8)
    events = [e for _ in range(30) for e in monitor.update("OK", 0.6, 0.0)]
    assert any(level == "alarm" and "the run's first frames 80%" in m for level, m in events)


# -- golden parts ---------------------------------------------------------------------------------


@pytest.fixture
def golden(tmp_path):
    return make_station(tmp_path / "golden", per_class=2, seed=5)


@pytest.fixture
def ok_model(tmp_path, tiny_vit_spec):
    return always_bundle(tmp_path / "always-ok", tiny_vit_spec, CLASSES, "ok")


def test_first_check_records_the_baseline_and_a_later_change_is_an_alarm_naming_the_parts(
    tmp_path, golden, ok_model
):
    home = tmp_path / "home"
    parts = load_golden(golden)
    assert len(parts) == 6 and {p.label for p in parts} == set(CLASSES)
    bundle = load_bundle(ok_model)
    engine = InferenceEngine(bundle)
    sha = engine.sha256

    first = check_golden(engine, parts, Baselines(home), "v1", sha)
    assert first.baseline_recorded and len(first.new) == 6
    # the model answers "ok" for all: the four scratch and spot parts disagree with their folders
    assert sorted(a.name for a in first.off_label) == [p.name for p in parts if p.label != "ok"]
    assert first.alarm and "disagree with their folder label" in first.message()
    assert (home / "golden-baselines" / f"{sha[:16]}.json").is_file()
    assert not (golden / "golden-baselines").exists()  # the set stays a plain dataset

    second = check_golden(engine, parts, Baselines(home), "v1", sha)
    assert not second.alarm and not second.baseline_recorded
    assert second.off_label_known == 4 and "6 of 6 as the baseline" in second.message()

    # The same version judged differently (here: a station override of the UNSURE threshold).
    strict = InferenceEngine(bundle, thresholds={**bundle.meta.thresholds, "unsure_below": 1.0})
    third = check_golden(strict, parts, Baselines(home), "v1", sha)
    assert third.alarm and len(third.changed) == 6
    message = third.message()
    assert "6 of 6 changed against the baseline" in message
    assert "ok/ok_000.png: OK ok → UNSURE ok" in message


def test_a_replaced_golden_image_is_a_new_part_with_its_own_baseline(tmp_path, golden, ok_model):
    home = tmp_path / "home"
    engine = InferenceEngine(load_bundle(ok_model))
    check_golden(engine, load_golden(golden), Baselines(home), "v1", engine.sha256)
    target = golden / "ok" / "ok_000.png"
    target.write_bytes((golden / "ok" / "ok_001.png").read_bytes())
    report = check_golden(engine, load_golden(golden), Baselines(home), "v1", engine.sha256)
    assert [a.name for a in report.new] == ["ok/ok_000.png"] and not report.alarm
    assert "baseline recorded for 1 new part(s)" in report.message()


def test_a_missing_golden_folder_is_one_clear_error(tmp_path):
    with pytest.raises(InspectorError, match="no golden parts folder"):
        load_golden(tmp_path / "nowhere")


def test_golden_check_cli_records_the_baseline_writes_the_event_and_exits_1_on_an_alarm(
    tmp_path, golden, ok_model
):
    runner = CliRunner()
    home = tmp_path / "home"
    args = ["golden", "check", "--model", str(ok_model), "--golden", str(golden), "--home", str(home)]
    first = runner.invoke(app, [*args, "--json", str(tmp_path / "g.json")])
    assert first.exit_code == 1, first.output
    assert "disagree with their folder label" in first.output
    report = json.loads((tmp_path / "g.json").read_text())
    assert report["baseline_recorded"] and report["alarm"] and len(report["off_label"]) == 4
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "6 of 6 as the baseline" in second.output
    with Ledger(f"sqlite:///{home / 'inspector.db'}") as ledger:
        events = ledger.events(kinds=["drift_golden"])
    assert [e["level"] for e in events] == ["info", "alarm"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_golden_check_json_refuses_a_fifo_before_judging_and_writes_atomically(tmp_path, golden, ok_model):
    home = tmp_path / "home"
    args = ["golden", "check", "--model", str(ok_model), "--golden", str(golden), "--home", str(home)]
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    refused = CliRunner().invoke(app, [*args, "--json", str(fifo), "--no-ledger"])
    assert refused.exit_code == 2 and "refusing to write over it" in refused.output, refused.output
    assert len(refused.output.strip().splitlines()) == 1, refused.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not home.exists() or not any(home.rglob("*")), "refused before any part was judged"
    target = tmp_path / "g.json"
    older = {"model": "v0", "sha256": "0" * 64, "alarm": False, "parts": 1, "changed": [], "message": "ok"}
    target.write_text(json.dumps(older))  # a report an earlier check wrote is replaced
    CliRunner().invoke(app, [*args, "--json", str(target), "--no-ledger"])
    assert json.loads(target.read_text())["parts"] == 6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".g.json.")] == []


def test_golden_check_json_never_replaces_a_file_it_did_not_write_nor_writes_into_the_golden_set(
    tmp_path, golden, ok_model
):
    """Probe (issue 27): ``golden check --json`` pointed at an image replaced it with JSON."""
    home = tmp_path / "home"
    args = ["golden", "check", "--model", str(ok_model), "--golden", str(golden), "--home", str(home)]
    image = golden / "ok" / "ok_000.png"
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    (tmp_path / "link.json").symlink_to(image)
    before = {p: p.read_bytes() for p in [*golden.rglob("*.png"), notes]}
    for target in (image, notes, tmp_path / "link.json", golden / "ok" / "new.json"):
        refused = CliRunner().invoke(app, [*args, "--json", str(target), "--no-ledger"])
        assert refused.exit_code == 2, (target, refused.output)
        assert len(refused.output.strip().splitlines()) == 1, refused.output
        assert (
            "not a report that 'inspector golden check' wrote" in refused.output
            or "folder being judged" in (refused.output.replace("\n", ""))
        )
    assert {p: p.read_bytes() for p in before} == before
    assert not (golden / "ok" / "new.json").exists()
    assert not home.exists() or not any(home.rglob("*")), "refused before any part was judged"


# -- on a real line ---------------------------------------------------------------------------------


def test_a_line_watches_inputs_against_its_first_frames_checks_golden_parts_between_parts_and_logs_it_all(
    tmp_path, station, golden, ok_model
):
    engine = InferenceEngine(load_bundle(ok_model))
    config = DriftConfig(
        window=20, reference_frames=20, golden_every_min=60, golden_dir=golden, home=tmp_path / "home"
    )
    source = SimulatedStation(station, split="all", fps=40)
    with Ledger(f"sqlite:///{tmp_path / 'line.db'}") as ledger:
        pipeline = Pipeline(source, engine, ledger, config=PipelineConfig(), watch=DriftWatch(engine, config))
        pipeline.start()
        try:
            kinds = lambda: {e.kind for e in pipeline.events}  # noqa: E731
            _wait_for(lambda: "drift_golden" in kinds() and pipeline.watch.inputs.reference is not None)
            source.set_profile("lighting", 3)
            _wait_for(lambda: any(e.kind == "drift_input" and e.level == "alarm" for e in pipeline.events))
        finally:
            pipeline.stop()
            pipeline.wait()
        messages = {e.kind: e.message for e in pipeline.events if e.kind.startswith("drift_")}
        assert "no training reference: watching against the run's first 20 frames" in " ".join(
            e.message for e in pipeline.events if e.kind == "drift_input"
        )
        assert "baseline recorded for 6 part(s)" in messages["drift_golden"]
        snap = pipeline.stats.snapshot()
        # golden parts are not parts of the line: every row in the ledger is a frame that entered
        assert snap.entered == snap.written + snap.dropped
        assert ledger.count_results(ResultFilter(run_id=pipeline.run_id)) == snap.written
        logged = {e["kind"] for e in ledger.events(run_id=pipeline.run_id)}
        assert {"drift_input", "drift_golden"} <= logged
    drift = pipeline.watch.snapshot()
    assert drift.stats_frames >= 20 and drift.stats_ms is not None
    assert len(drift.series["brightness"]) == drift.stats_frames or len(drift.series["brightness"]) == 600
    assert "brightness" in drift.alarms or "contrast" in drift.alarms or "sharpness" in drift.alarms


def test_drift_settings_are_validated():
    Settings().validate()
    for bad in (
        {"golden_every_min": -1},
        {"drift_window": 5},
        {"drift_window": 20.5},
        {"drift_input_k": 0},
        {"drift_ood_rate": 1.5},
        {"drift_confidence_drop": float("nan")},
        {"golden_dir": 3},
    ):
        with pytest.raises(InspectorError):
            replace(Settings(), **bad).validate()


def test_a_headless_run_of_the_demo_model_alarms_after_the_lamp_changes(tmp_path):
    """``inspector run`` end to end with the bundled demo model (watched against its training set's
    input reference) on ELPV cells, the later ones under the simulated station's lamp change (its
    ``lighting`` profile at severity 3, as ``inspector demo --drift-after``)."""
    import cv2

    from data.augment import apply, build_augmentation
    from data.images import to_uint8

    try:
        test = load_station("elpv").split("test")
    except Exception:
        pytest.skip("elpv-dataset not installed")
    frames = tmp_path / "frames"
    frames.mkdir()
    lamp = build_augmentation(["lighting"], 3, seed=0)
    for i, sample in enumerate(test[:120]):
        image = to_uint8(read_image(sample.path))
        cv2.imwrite(str(frames / f"{i:04d}.png"), apply(lamp, image) if i >= 60 else image)
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"drift_window": 30, "drift_reference_frames": 40}))
    args = ["run", "--source", f"{frames}?fps=0", "--model", "demo", "--drop", "block", "--no-archive"]
    result = CliRunner().invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "inputs against the training set (" in result.output, result.output
    assert "input drift:" in result.output and "training" in result.output
    with Ledger(f"sqlite:///{home / 'inspector.db'}") as ledger:
        alarms = ledger.events(kinds=["drift_input"])
    assert any(e["level"] == "alarm" for e in alarms)


def test_a_golden_part_waits_while_the_next_frame_is_due_sooner_than_it_takes(tmp_path, golden, ok_model):
    engine = InferenceEngine(load_bundle(ok_model))
    watch = DriftWatch(engine, DriftConfig(golden_dir=golden, home=tmp_path / "home"))
    watch.attach(lambda level, kind, message: None)
    assert "queued" in watch.request_golden()
    assert watch.idle(None)  # no frame rate known: one part, and its cost is measured
    assert len(watch._golden.answers) == 1
    assert not watch.idle(0.0)  # the next frame is due now: nothing is judged
    assert len(watch._golden.answers) == 1
    assert watch.idle(60.0) and len(watch._golden.answers) == 2
