"""Speed figures on the backend the line runs (issue 25, item 6): the roll-out gate's latency, the
wizard's speed and the report's twin are timed on the runtime the line picks (``auto``: ONNX Runtime,
or OpenVINO where installed and faster), not on PyTorch eager."""

from __future__ import annotations

import pytest
from tests_support import always_bundle

from inspector.line.line_timing import backend_name, line_cache, line_engines, time_per_part
from inspector.registry import Registry
from inspector.rollout import score_models
from models.bundle import load_bundle

CLASSES = ["ok", "scratch", "spot"]


@pytest.fixture
def home(tmp_path, tiny_vit_spec):
    """A registry with v1 and v2 (each a tiny transformer that exports to ONNX)."""
    root = tmp_path / "home"
    registry = Registry(root)
    for name in ("a", "b"):
        registry.add(always_bundle(tmp_path / name, tiny_vit_spec, CLASSES, "ok"))
    return root


def test_the_gates_latency_is_timed_on_the_lines_backend(home, tiny_station):
    registry = Registry(home)
    paths = {v.id: registry.path_of(v.id) for v in registry.versions()}
    said: list[str] = []
    scores, skipped = score_models(paths, str(tiny_station), paths["v1"], log=said.append)
    assert not skipped and all(score.latency_ms > 0 for score in scores.values())
    timed = next(line for line in said if line.startswith("latency timed on the line's backend: "))
    assert "v1 " in timed and "v2 " in timed and "PyTorch" not in timed  # ONNX Runtime or OpenVINO
    # the line's own cache: the export the gate timed is the one the line opens after the deploy
    assert len(list((home / "cache" / "onnx").glob("*.onnx"))) == 2


def test_a_bundle_outside_a_registry_is_timed_from_a_temporary_cache(tmp_path, tiny_vit_spec):
    path = always_bundle(tmp_path / "staged", tiny_vit_spec, CLASSES, "spot")
    assert line_cache(path) is None
    assert line_cache(path, tmp_path / "home") == tmp_path / "home" / "cache" / "onnx"
    with line_engines({"staged": load_bundle(path)}) as engines:
        assert backend_name(engines["staged"]) != "PyTorch"
        timed = time_per_part(engines, rounds=2, runs=2)
    assert timed["staged"].runs == 4 and timed["staged"].p50_ms > 0
    assert not (tmp_path / "home").exists()


def test_a_model_that_does_not_export_is_timed_on_pytorch(tmp_path, tiny_vit_spec):
    from models.bundle import Bundle, meta_for
    from models.network import InspectionNet

    net = InspectionNet(tiny_vit_spec, 2, "tome").eval()  # ToMe's gather/scatter does not export
    net.set_schedule([2, 2, 2, 2])
    with line_engines({"tome": Bundle(net, meta_for(net, ["ok", "ng"]))}) as engines:
        assert backend_name(engines["tome"]) == "PyTorch"
        assert time_per_part(engines, rounds=1, runs=1)["tome"].runs == 1


def test_the_wizards_speed_names_the_lines_backend(home, tmp_path, tiny_vit_spec):
    from inspector.jobs.speed import measure_speed

    staged = always_bundle(tmp_path / "staged", tiny_vit_spec, CLASSES, "spot")
    figures = measure_speed(Registry(home).path_of("v1"), staged, runs=3, task=None)
    for key in ("before", "after"):
        assert figures[key]["backend"] not in ("", "PyTorch") and figures[key]["p50"] > 0
        assert figures[key]["gmacs"] > 0


def test_the_reports_twin_is_timed_on_the_lines_backend_from_its_cache(tmp_path, tiny_vit_spec):
    from inspector.reports.cost import time_twin

    path = always_bundle(tmp_path / "m", tiny_vit_spec, CLASSES, "ok")
    twin = time_twin(path, rounds=1, home=tmp_path / "home")
    assert "PyTorch" not in twin.backend and twin.cpu_ms > 0 and twin.twin_cpu_ms > 0
    # the model's export is the line's (kept for it); the twin's went to a temporary cache
    assert len(list((tmp_path / "home" / "cache" / "onnx").glob("*.onnx"))) == 1
