"""Shadow mode from the command line: ``run --shadow``, the summary, and promote/discard as audited
decisions (promote deploys through the roll-out gate)."""

from __future__ import annotations

import re

import pytest
import torch
from typer.testing import CliRunner

from inspector.cli import app
from inspector.errors import InspectorError
from inspector.registry import Registry
from inspector.settings import load_settings, save_settings
from inspector.shadow_review import discard, shadow_summaries, shadow_summary
from inspector.store import Ledger, ResultFilter
from models.bundle import meta_for, save_bundle
from models.network import InspectionNet

CLASSES = ["ok", "scratch", "spot"]
runner = CliRunner()


def _always(tmp_path, tiny_vit_spec, name: str, favourite: str):
    """A bundle that answers ``favourite`` for every image, confidently (head weights zero)."""
    net = InspectionNet(tiny_vit_spec, len(CLASSES), "none")
    with torch.no_grad():
        net.backbone.head.weight.zero_()
        net.backbone.head.bias.copy_(torch.tensor([8.0 if c == favourite else 0.0 for c in CLASSES]))
    meta = meta_for(net, CLASSES, normal_class="ok", thresholds={"unsure_below": 0.5})
    return save_bundle(net, meta, tmp_path / name)


@pytest.fixture
def home(tmp_path, tiny_vit_spec):
    """v1 (always ok, deployed), v2 (always spot: disagrees on every part), v3 (= v1: agrees)."""
    root = tmp_path / "home"
    registry = Registry(root)
    for name, favourite in (("a", "ok"), ("b", "spot"), ("c", "ok")):
        registry.add(_always(tmp_path, tiny_vit_spec, name, favourite))
    registry.deploy("v1")
    return root


def _run(home, station, shadow: str):
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            str(station),
            "--shadow",
            shadow,
            "--fps",
            "50",
            "--no-archive",
            "--backend",
            "torch",
            "--home",
            str(home),
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def _counts(line: str) -> tuple[float, int, int, int]:
    found = re.search(r"agreement ([\d.]+) % of ([\d,]+), ([\d,]+) disagreements?, ([\d,]+) shed", line)
    assert found, line
    pct, judged, disagreed, shed = found.groups()
    return (
        float(pct),
        int(judged.replace(",", "")),
        int(disagreed.replace(",", "")),
        int(shed.replace(",", "")),
    )


def test_run_with_a_shadow_then_summary_review_filter_and_discard(home, tiny_station):
    output = _run(home, tiny_station, "v2")
    assert "shadow" in output and "v2" in output
    url = f"sqlite:///{home / 'inspector.db'}"

    summary = runner.invoke(app, ["models", "shadow-summary", "v2", "--home", str(home)])
    assert summary.exit_code == 0, summary.output
    pct, judged, disagreed, shed = _counts(summary.output)
    assert judged + shed == 72  # every part judged by the deployed model: shadow-judged, or shed
    assert pct == 0.0 and disagreed == judged > 0
    assert re.search(rf"^ok\s+0\.0%\s+0\s+{judged}$", summary.output, re.M), summary.output
    assert f"OK→NG {judged}" in summary.output

    with Ledger(url) as ledger:
        rows = ledger.query_results(ResultFilter(shadow_disagreements=True), limit=500)
        assert len(rows) == disagreed
        assert {(r["verdict"], r["label"]) for r in rows} == {("OK", "ok")}  # the deployed answer rules
        assert {(r["shadow"]["verdict"], r["shadow"]["label"]) for r in rows} == {("NG", "spot")}

    settings = load_settings(home)
    settings.shadow = "v2"
    save_settings(home, settings)
    refused = runner.invoke(app, ["models", "shadow-discard", "v2", "--by", "ann", "--home", str(home)])
    assert refused.exit_code == 2 and "needs a --reason" in refused.output
    done = runner.invoke(
        app,
        [
            "models",
            "shadow-discard",
            "v2",
            "--by",
            "ann",
            "--reason",
            "calls every part spot",
            "--home",
            str(home),
        ],
    )
    assert done.exit_code == 0, done.output
    assert load_settings(home).shadow == ""  # it no longer shadows lines started in the app
    trail = runner.invoke(app, ["models", "audit", "--home", str(home)])
    assert "v2 discarded as shadow candidate by ann" in trail.output
    assert "calls every part spot" in trail.output
    assert shadow_summary(home, url, "v2").decision.startswith("v2 discarded")


def test_promote_deploys_through_the_audited_gate_with_the_shadow_record(home, tiny_station):
    url = f"sqlite:///{home / 'inspector.db'}"
    with pytest.raises(InspectorError, match="has not run in shadow"):
        from inspector.shadow_review import promote

        promote(home, url, "v3", who="bo", reason="x", data=None)
    _run(home, tiny_station, "v3")
    found = shadow_summaries(home, url)
    assert set(found) == {"v3"} and found["v3"].disagreements == 0
    assert found["v3"].agreement_pct == 100.0
    # No held-out data: the gate cannot run, so the audited deploy needs a reason.
    no_reason = runner.invoke(app, ["models", "shadow-promote", "v3", "--by", "bo", "--home", str(home)])
    assert no_reason.exit_code == 2 and "needs a --reason" in no_reason.output
    done = runner.invoke(
        app, ["models", "shadow-promote", "v3", "--by", "bo", "--reason", "agrees", "--home", str(home)]
    )
    assert done.exit_code == 0, done.output
    assert Registry(home).deployed().id == "v3"
    trail = runner.invoke(app, ["models", "audit", "--home", str(home)]).output.splitlines()
    assert "v3 promoted from shadow by bo" in trail[0]
    assert (
        "v3 deployed by bo" in trail[1] and "promoted from shadow (Shadow: v3 — agreement 100.0 %" in trail[1]
    )


def test_discard_of_a_candidate_is_refused_without_who(home):
    with pytest.raises(InspectorError, match="say who"):
        discard(home, f"sqlite:///{home / 'inspector.db'}", "v2", who=" ", reason="r")


def test_a_promotion_the_gate_blocks_is_an_answer_and_an_override_needs_a_reason(home, tiny_station):
    """The Models screen's Promote runs as this background job: a blocked gate comes back as checks
    (nothing deployed, the candidate still shadowing), and the override deploys it, audited."""
    from types import SimpleNamespace

    from inspector.jobs.deploy import deploy_job
    from inspector.rollout import GateMargins, audit_trail

    url = f"sqlite:///{home / 'inspector.db'}"
    settings = load_settings(home)
    settings.shadow = "v2"
    save_settings(home, settings)
    _run(home, tiny_station, "v2")
    task = SimpleNamespace(report=lambda _text: None)
    margins = GateMargins(latency_ratio=1000.0)  # the gate's logic here, not this machine's noise
    gate = (str(tiny_station), margins)
    blocked = deploy_job(home, url, "v2", "bo", "", *gate, False, True, task=task)
    assert blocked["blocked"] and any(line.startswith("✗") for line in blocked["checks"])
    assert Registry(home).deployed().id == "v1" and load_settings(home).shadow == "v2"
    with pytest.raises(InspectorError, match="needs a --reason"):
        deploy_job(home, url, "v2", "bo", " ", *gate, True, True, task=task)
    done = deploy_job(home, url, "v2", "bo", "trial on lane 2", *gate, True, True, task=task)
    assert not done["blocked"] and done["version"] == "v2"
    assert Registry(home).deployed().id == "v2" and load_settings(home).shadow == ""
    trail = [event["message"] for event in audit_trail(url)]
    assert "v2 promoted from shadow by bo" in trail[0]
    assert "overridden" in trail[1] and "trial on lane 2" in trail[1] and "promoted from shadow" in trail[1]
