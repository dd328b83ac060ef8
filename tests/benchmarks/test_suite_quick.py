"""The benchmark suite's machinery on its quick profile: nothing about the numbers is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # trains the quick profile's tiny models and times them
def test_quick_profile_runs_caches_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ is not an installed package
    from benchmarks.suite import PROFILES, Suite, main, variants

    main(["--profile", "quick", "--out", str(tmp_path)])
    first = capsys.readouterr().out

    profile = PROFILES["quick"]
    keys = {v.key for b in profile.backbones for d in profile.datasets for v in variants(profile, b, d)}
    runs = tmp_path / "runs" / "suite" / "quick"
    records = [json.loads(p.read_text()) for p in runs.glob("*/*/seed*/*.json")]
    assert {r["variant"] for r in records} == keys
    for record in records:
        assert 0.0 <= record["macro_f1"] <= 1.0 and record["gmacs"] > 0 and record["params"] > 0
        assert set(record["recall"]) == {"ok", "scratch", "spot"}

    results = tmp_path / "results"
    summary = json.loads((results / "suite_quick.json").read_text())
    assert (results / "suite_quick.png").stat().st_size > 10_000
    assert not summary["missing"] and not summary["skipped"]
    rows = {r["variant"]: r for r in summary["rows"]}
    assert set(rows) == keys
    assert all(r["speed"] is not None for r in rows.values())
    assert rows["tome-0.6-ots"]["speed"]["ort_p50_ms"] is None  # ToMe is not exported
    assert rows["ltm-0.6"]["speed"]["ort_p50_ms"] > 0 and rows["ltm-0.6"]["speed"]["ort_p50_ratio"] > 0
    assert all(r["speed"]["torch_p50_ratio"] > 0 for r in rows.values())
    assert summary["speed_runs"]["vit-quick"]["matmul_gflops"] > 0
    assert "[1/" in first and " left " in first  # progress lines with an ETA

    again = Suite("quick", tmp_path, log=lambda line: None)
    again.run()
    assert again.executed == []  # every training step and the speed run came from the cache

    main(["--profile", "quick", "--out", str(tmp_path), "--report"])
    report = capsys.readouterr().out
    markdown = (results / "suite_quick.md").read_text()
    for text in (report, markdown):
        for method in {v.method for v in variants(profile, "vit-quick", profile.datasets[0])}:
            assert method in text
        assert "ImageNet" in text and "n/a (not exportable)" in text


def test_every_method_has_a_plot_style(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.suite import COLOURS, MARKERS, METHODS

    assert set(COLOURS) == set(METHODS) == set(MARKERS)


def test_no_speed_plans_training_only(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.suite import Suite

    names = {step.name for step in Suite("quick", tmp_path, log=lambda line: None, measure=False).plan()}
    assert "speed" not in names and {"base", "unmerged", "ltm-0.6"} <= names
    assert "speed" in {step.name for step in Suite("quick", tmp_path, log=lambda line: None).plan()}
