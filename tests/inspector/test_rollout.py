"""Staged roll-out: the offline gate blocks a regression, an override needs a reason, and every
deploy and rollback lands in the ledger's audit trail."""

from __future__ import annotations

import pytest
from tests_support import always_bundle
from typer.testing import CliRunner

from inspector.cli import app
from inspector.errors import InspectorError
from inspector.registry import Registry
from inspector.rollout import (
    GateBlocked,
    GateMargins,
    ModelScore,
    audit_trail,
    compare,
    deploy,
    rollback,
)

CLASSES = ["ok", "scratch", "spot"]
LOOSE_LATENCY = GateMargins(latency_ratio=1000.0)  # the gate's logic here, not this machine's noise
runner = CliRunner()


@pytest.fixture
def home(tmp_path, tiny_vit_spec):
    """A registry with v1 (always ok, deployed), v2 (always spot: loses ok's recall), v3 (= v1)."""
    root = tmp_path / "home"
    registry = Registry(root)
    for name, favourite in (("a", "ok"), ("b", "spot"), ("c", "ok")):
        registry.add(always_bundle(tmp_path / name, tiny_vit_spec, CLASSES, favourite))
    registry.deploy("v1")
    return root


def _url(home) -> str:
    return f"sqlite:///{home / 'inspector.db'}"


def test_gate_blocks_a_regression_and_audits_the_attempt(home, tiny_station):
    with pytest.raises(GateBlocked, match=r"recall ok 0 \(deployed 1") as blocked:
        deploy(home, _url(home), "v2", who="ann", reason="", data=str(tiny_station), margins=LOOSE_LATENCY)
    result = blocked.value.result
    assert result.candidate.recall["spot"] == 1.0 and result.deployed.recall["ok"] == 1.0
    assert not result.passed
    assert Registry(home).deployed().id == "v1", "a blocked deploy changes nothing"
    trail = audit_trail(_url(home))
    assert len(trail) == 1 and "v2 blocked by the offline gate (asked by ann)" in trail[0]["message"]


def test_override_needs_a_reason_and_is_audited_as_such(home, tiny_station):
    arguments = dict(who="ann", data=str(tiny_station), margins=LOOSE_LATENCY, override=True)
    with pytest.raises(InspectorError, match="needs a --reason"):
        deploy(home, _url(home), "v2", reason=" ", **arguments)
    version, result = deploy(home, _url(home), "v2", reason="night shift test", **arguments)
    assert version.id == "v2" and not result.passed
    newest = audit_trail(_url(home))[0]
    assert newest["level"] == "warning"
    assert "v2 deployed by ann (was v1)" in newest["message"] and "overridden" in newest["message"]
    assert "night shift test" in newest["message"]


def test_a_candidate_no_worse_passes_and_rollback_is_one_audited_action(home, tiny_station):
    version, result = deploy(
        home, _url(home), "v3", who="bo", reason="", data=str(tiny_station), margins=LOOSE_LATENCY
    )
    assert version.id == "v3" and result.passed and result.candidate.unsure_rate == 0.0
    assert rollback(home, _url(home), who="bo", reason="operators prefer v1").id == "v1"
    kinds = [(e["kind"], e["level"]) for e in audit_trail(_url(home))]
    assert kinds == [("rollback", "warning"), ("deploy", "info")]


def test_without_held_out_data_the_deploy_needs_a_reason(home):
    with pytest.raises(InspectorError, match="needs a --reason"):
        deploy(home, _url(home), "v2", who="ann", reason="", data=None)
    assert Registry(home).deployed().id == "v1"
    deploy(home, _url(home), "v2", who="ann", reason="hotfix", data=None)
    assert "gate skipped" in audit_trail(_url(home))[0]["message"]


def test_no_deploy_when_the_audit_cannot_be_written(home, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    broken = f"sqlite:///{tmp_path / 'a-file' / 'x.db'}"
    with pytest.raises(InspectorError):
        deploy(home, broken, "v2", who="ann", reason="x", data=None)
    assert Registry(home).deployed().id == "v1"


def test_a_changed_class_set_is_a_failed_check_that_needs_an_override_and_a_reason(
    home, tmp_path, tiny_vit_spec
):
    """Probe (issue 27): a candidate with one extra class was deployed with no check and no reason
    ("nothing to compare with": the deployed model could not score the station's new class)."""
    from conftest import make_station

    station = make_station(tmp_path / "four", classes=(*CLASSES, "dent"), per_class=12, size=32)
    Registry(home).add(always_bundle(tmp_path / "d", tiny_vit_spec, [*CLASSES, "dent"], "ok"))  # v4
    arguments = dict(who="ann", data=str(station), margins=LOOSE_LATENCY)
    with pytest.raises(GateBlocked, match="class set changed: adds dent") as blocked:
        deploy(home, _url(home), "v4", reason="", **arguments)
    result = blocked.value.result
    assert [check.what for check in result.checks if not check.passed] == ["class set"]
    assert set(result.candidate.recall) == set(result.deployed.recall) == set(CLASSES), "shared classes"
    assert result.deployed.recall["ok"] == result.candidate.recall["ok"] == 1.0
    assert Registry(home).deployed().id == "v1"
    with pytest.raises(InspectorError, match="needs a --reason"):
        deploy(home, _url(home), "v4", reason="", override=True, **arguments)
    version, _ = deploy(
        home, _url(home), "v4", reason="dent is a new defect type", override=True, **arguments
    )
    assert version.id == "v4"
    newest = audit_trail(_url(home))[0]
    assert newest["level"] == "warning" and "class set changed: adds dent" in newest["message"]
    assert "overridden" in newest["message"] and "dent is a new defect type" in newest["message"]
    # and back: the three-class model drops dent, gated on the shared classes the same way
    with pytest.raises(GateBlocked, match="class set changed: drops dent"):
        deploy(home, _url(home), "v1", reason="", **arguments)


def test_compare_checks_recall_unsure_and_latency():
    deployed = ModelScore(
        "v1", {"ok": 0.9, "ng": 0.8}, unsure_rate=0.10, latency_ms=10.0, macro_f1=0.85, n=50
    )
    same = ModelScore("v2", {"ok": 0.89, "ng": 0.8}, unsure_rate=0.14, latency_ms=12.0, macro_f1=0.85, n=50)
    assert all(check.passed for check in compare(same, deployed, GateMargins()))
    worse = ModelScore("v3", {"ok": 0.85, "ng": 0.8}, unsure_rate=0.2, latency_ms=13.0, macro_f1=0.8, n=50)
    failed = [check.what for check in compare(worse, deployed, GateMargins()) if not check.passed]
    assert failed == ["recall ok", "UNSURE rate", "latency p50"]


def test_cli_deploy_gate_and_audit(home, tiny_station):
    common = ["--home", str(home)]
    blocked = runner.invoke(
        app, ["models", "deploy", "v2", "--data", str(tiny_station), "--by", "ann", *common]
    )
    assert blocked.exit_code == 2 and "offline gate blocked it" in blocked.output
    assert "Traceback" not in blocked.output
    done = runner.invoke(
        app, ["models", "deploy", "v3", "--reason", "same model, new name", "--by", "bo", *common]
    )
    assert done.exit_code == 0, done.output
    back = runner.invoke(app, ["models", "rollback", "--by", "bo", "--reason", "undo", *common])
    assert back.exit_code == 0 and "v1 is deployed again" in back.output
    trail = runner.invoke(app, ["models", "audit", *common])
    lines = trail.output.strip().splitlines()
    assert trail.exit_code == 0 and len(lines) == 3
    assert "rollback" in lines[0] and "v3 deployed by bo" in lines[1] and "blocked" in lines[2]


def test_audit_shows_control_characters_and_keeps_one_event_per_line(home):
    """A newline in --reason forged a second audit line; ANSI escapes in --by rewrote the terminal."""
    forged = "undo\n2026-01-01 00:00  deploy   v9 deployed by ceo"
    common = ["--home", str(home)]
    deploy(home, _url(home), "v2", who="ann", reason="hotfix", data=None)
    back = runner.invoke(
        app, ["models", "rollback", "--by", "\x1b[2Jmallory\u202e", "--reason", forged, *common]
    )
    assert back.exit_code == 0, back.output
    stored = audit_trail(_url(home))[0]["message"]
    assert "\x1b[2Jmallory" in stored and forged in stored, "what is stored is what was given"
    lines = runner.invoke(app, ["models", "audit", *common]).output.strip().splitlines()
    assert len(lines) == 2, lines
    assert "\x1b" not in lines[0] and "\u202e" not in lines[0]
    assert "\\x1b[2Jmallory\\u202e" in lines[0] and "undo\\n2026-01-01" in lines[0]


# ---------------------------------------------------------------- a model serving several stations
def with_stations(bundle, stations: dict[str, tuple[str, str]]):
    """``bundle`` with a ``stations`` provenance: name -> (data, role), fingerprinted as the gate
    will open each (seed 0: these bundles record no seed). Edited before the registry adds it."""
    import json

    from data.station import load_station

    def entry(name: str, data: str, role: str) -> dict:
        fingerprint = load_station(data, 0).fingerprint()
        split = "val" if role == "trained" else "test"
        return dict(name=name, data=data, fingerprint=fingerprint, split=split, n=36, macro_f1=0.9,
                    accuracy=0.9, role=role)  # fmt: skip

    meta_path = bundle / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["provenance"]["stations"] = [entry(name, *spec) for name, spec in stations.items()]
    meta_path.write_text(json.dumps(meta))
    return bundle


@pytest.fixture
def two_stations(tmp_path, tiny_vit_spec):
    """v1 (always ok, deployed) serves lamp1 (scratch and spot only) and lamp2 (all three classes);
    v2 (always spot) is no worse on lamp1, where nothing is ok, but loses lamp2's ok parts."""
    from conftest import make_station

    lamp1 = make_station(tmp_path / "lamp1", classes=("scratch", "spot"), per_class=12, size=32)
    lamp2 = make_station(tmp_path / "lamp2", per_class=12, size=32, seed=1)
    root = tmp_path / "home"
    registry = Registry(root)
    served = {"lamp1": (str(lamp1), "trained"), "lamp2": (str(lamp2), "adapted")}
    registry.add(with_stations(always_bundle(tmp_path / "a", tiny_vit_spec, CLASSES, "ok"), served))
    registry.add(always_bundle(tmp_path / "b", tiny_vit_spec, CLASSES, "spot"))
    registry.deploy("v1")
    return root, lamp1, lamp2


def test_the_gate_checks_every_station_the_deployed_model_serves(two_stations):
    """Issue 26: the gate scored only the new station; a candidate that forgot the old one passed."""
    from inspector.rollout import gate_detail

    home, lamp1, _ = two_stations
    with pytest.raises(GateBlocked, match=r"lamp2: recall ok 0 \(deployed 1") as blocked:
        deploy(home, _url(home), "v2", who="ann", reason="", data=str(lamp1), margins=LOOSE_LATENCY)
    result = blocked.value.result
    failed = [check.what for check in result.checks if not check.passed]
    assert failed == ["lamp2: recall ok"], "lamp1 itself is no worse"
    assert not any(check.what.startswith("lamp1:") for check in result.checks), "the main station once"
    assert [check.what for check in result.checks if check.what.startswith("lamp2")] == [
        "lamp2: recall ok", "lamp2: recall scratch", "lamp2: recall spot", "lamp2: UNSURE rate",
    ]  # fmt: skip
    (lamp2,) = result.others
    assert lamp2.name == "lamp2" and lamp2.n > 0 and not lamp2.why_not
    assert result.summary().endswith(f"/lamp1, {lamp2.n} of lamp2")
    detail = gate_detail(result, "")
    assert detail["stations"] == [{"name": "lamp2", "n": lamp2.n, "not_checked": ""}]
    assert any(line.startswith("FAIL lamp2: recall ok") for line in detail["checks"])
    assert Registry(home).deployed().id == "v1"


def test_a_station_gone_or_changed_is_a_note_not_a_block(two_stations):
    import shutil

    home, lamp1, lamp2 = two_stations
    arguments = dict(who="ann", reason="", data=str(lamp1), margins=LOOSE_LATENCY)
    extra = next((lamp2 / "ok").iterdir())
    shutil.copy(extra, lamp2 / "ok" / f"copy-{extra.name}")
    version, result = deploy(home, _url(home), "v2", **arguments)
    assert version.id == "v2" and result.passed
    assert "not checked on lamp2: fingerprint changed" in result.summary()
    assert "not checked on lamp2: fingerprint changed" in audit_trail(_url(home))[0]["message"]
    rollback(home, _url(home), who="ann", reason="again")
    shutil.rmtree(lamp2)
    _, result = deploy(home, _url(home), "v2", **arguments)
    assert result.passed and "not checked on lamp2: folder not found" in result.summary()


def test_other_stations_are_deduplicated_and_skip_the_gated_one(tmp_path):
    from inspector.rollout import other_stations

    def entry(name, data, fingerprint="f"):
        return dict(name=name, data=data, fingerprint=fingerprint, split="val", n=1, macro_f1=1.0,
                    accuracy=1.0, role="carried")  # fmt: skip

    (tmp_path / "lamp1").mkdir()
    (tmp_path / "lamp1" / "manifest.csv").write_text("path,label\n")
    stations = [
        entry("lamp1", str(tmp_path / "lamp1" / "manifest.csv")),  # the one being gated, spelled otherwise
        entry("elpv", "elpv"),
        entry("elpv again", "elpv"),
        entry("elpv refilled", "elpv", "g"),
    ]
    found = other_stations({"stations": stations}, str(tmp_path / "lamp1"))
    assert [s.name for s in found] == ["elpv", "elpv refilled"]


def test_a_blocked_deploy_says_what_the_gate_could_not_check(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from inspector.jobs import deploy as jobs_deploy
    from inspector.rollout import GateBlocked, GateCheck, GateMargins, GateResult, ModelScore, OtherStation

    score = ModelScore("v2", {"ok": 1.0}, 0.0, 5.0, 0.5, 40)
    result = GateResult(
        score,
        score,
        "station-a",
        checks=[GateCheck("macro-F1", 0.9, 0.5, 0.88, True)],
        note="2 classes only the deployed model knows",
        others=[OtherStation("station-b", why_not="no held-out images left")],
    )

    def blocked(*_a, **_k):
        raise GateBlocked(result)

    monkeypatch.setattr(jobs_deploy, "deploy", blocked)
    answer = jobs_deploy.deploy_job(
        tmp_path,
        "sqlite://",
        "v2",
        None,
        "why",
        "station-a",
        GateMargins(),
        False,
        task=SimpleNamespace(report=print),
    )
    assert answer["blocked"] and answer["checks"][0].startswith("✗ macro-F1")
    assert answer["notes"] == [
        "not checked on station-b: no held-out images left",
        "2 classes only the deployed model knows",
    ]
