"""The int8 accuracy gate (issue 25): an int8 graph judges parts only after it kept macro-F1 and the
line's verdicts on the validation split; otherwise the line runs fp32 and says why in one line,
and what ran is in the run's ledger row. Also ``inspector models bench``'s rows and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from inspector.cli import app
from inspector.line.backends import auto_record, int8_path
from inspector.line.inference import InferenceEngine
from inspector.line.int8 import (
    MAX_F1_DROP,
    build_and_gate,
    judge,
    noise_step,
    open_station_for,
    read_gate,
    with_noise,
)
from inspector.line.verdicts import VerdictRules
from inspector.store import Ledger
from models.bundle import Bundle, load_bundle, meta_for, save_bundle
from models.files import stamp_matches as stamped
from models.network import InspectionNet
from models.onnx_export import OnnxPredictor, export_onnx
from models.preprocess import Preprocessing

CLASSES = ["ok", "scratch", "spot"]
runner = CliRunner()


def _rules() -> VerdictRules:
    return VerdictRules.from_bundle(CLASSES, "ok", {})


def _outputs(predicted: list[int], weak: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Confident outputs for the classes ``predicted``; at ``weak`` the same class below 50 %."""
    logits = np.full((len(predicted), 3), -4.0, np.float32)
    logits[np.arange(len(predicted)), predicted] = 4.0
    for index in weak:
        logits[index] = 0.0
        logits[index, predicted[index]] = 0.3  # top class at 40 %: UNSURE on the line
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probabilities, logits


def test_the_gate_passes_identical_outputs_and_refuses_changed_verdicts():
    labels = [CLASSES[i % 3] for i in range(200)]
    truth = [i % 3 for i in range(200)]
    same = judge(CLASSES, _rules(), labels, _outputs(truth), _outputs(truth))
    assert same.passed and same.agreement == 1.0 and same.reason.startswith("int8 passed the gate")
    # Three of 200 parts keep their class but become UNSURE: macro-F1 is unchanged, 1.5 % of the
    # verdicts are not, so a person would be called to parts fp32 judged alone.
    refused = judge(CLASSES, _rules(), labels, _outputs(truth), _outputs(truth, weak=(1, 4, 7)))
    assert refused.macro_f1_int8 == refused.macro_f1_fp32
    assert not refused.passed and refused.agreement == pytest.approx(0.985)
    assert "int8 refused" in refused.reason and "at least 99% must agree" in refused.reason
    assert "\n" not in refused.reason


def test_the_gate_puts_its_figures_in_scale_with_fp32_under_half_a_gray_level_of_noise():
    """How many verdicts fp32 itself changes under imperceptible noise is reported beside the
    agreement; it does not move the 99 % rule."""
    labels = [CLASSES[i % 3] for i in range(200)]
    truth = [i % 3 for i in range(200)]
    noisy = _outputs(truth, weak=tuple(range(0, 200, 20)))  # 10 of 200 verdicts move under the noise
    result = judge(CLASSES, _rules(), labels, _outputs(truth), _outputs(truth), noisy)
    assert result.passed and result.noise_flips == pytest.approx(0.05)
    assert result.reason.endswith("for scale, 0.5 gray level of noise changes 5.0% of fp32's own verdicts")
    assert judge(CLASSES, _rules(), labels, _outputs(truth), _outputs(truth)).noise_flips is None


def test_the_noise_is_half_a_gray_level_the_same_on_every_channel():
    prep = Preprocessing(size=8, channels=3, mean=[0.5, 0.4, 0.3], std=[0.5, 0.25, 0.2])
    step = noise_step(prep)
    inputs = np.zeros((64, 3, 8, 8), np.float32)
    noise = with_noise(inputs, step)
    in_gray_levels = noise * np.asarray(prep.std).reshape(1, -1, 1, 1) * 255
    assert np.abs(in_gray_levels).max() <= 0.5 + 1e-5 and np.abs(in_gray_levels).max() > 0.49
    assert np.allclose(in_gray_levels[:, 0], in_gray_levels[:, 1]) and np.allclose(
        in_gray_levels[:, 0], in_gray_levels[:, 2]
    )
    assert noise_step(Preprocessing(size=8, channels=3, normalize="image")) is None


def test_a_macro_f1_drop_beyond_half_a_point_is_refused_even_when_verdicts_agree():
    """Two NG classes swapped keep every OK/NG verdict but cost macro-F1."""
    labels = [CLASSES[i % 3] for i in range(300)]
    truth = [i % 3 for i in range(300)]
    swapped = [2 if t == 1 and i < 30 else t for i, t in enumerate(truth)]
    result = judge(CLASSES, _rules(), labels, _outputs(truth), _outputs(swapped))
    assert result.macro_f1_fp32 - result.macro_f1_int8 > MAX_F1_DROP
    assert not result.passed and "macro-F1 may drop by 0.5 point at most" in result.reason


@pytest.fixture
def bundle(tmp_path, tiny_vit_spec, tiny_station) -> Bundle:
    net = InspectionNet(tiny_vit_spec, 3, "ltm").eval()
    net.set_schedule([None, [3, 3], None, [2, 2]])
    meta = meta_for(net, CLASSES, provenance={"data": str(tiny_station)})
    return load_bundle(save_bundle(net, meta, tmp_path / "bundle"))


def _negated_head(bundle: Bundle):
    """A 'quantizer' that writes a graph whose class scores are flipped: a broken int8 model."""

    def quantize(_fp32, target, _calibration) -> None:
        net = InspectionNet(bundle.net.spec, 3, "ltm")
        net.set_schedule(bundle.net.schedule())
        net.load_state_dict(bundle.net.state_dict())
        with torch.no_grad():
            net.backbone.head.weight.mul_(-1)
            net.backbone.head.bias.mul_(-1)
            net.backbone.head.bias[0] += 5.0  # everything OK: every defect missed
        export_onnx(net.eval(), target)

    return quantize


def test_a_broken_int8_graph_is_refused_and_the_line_runs_fp32_saying_why(tmp_path, bundle, tiny_station):
    cache = tmp_path / "cache"
    engine = InferenceEngine(bundle, "onnx", cache)
    station = open_station_for(bundle, str(tiny_station))
    target = int8_path(engine.onnx_path)
    result = build_and_gate(
        bundle,
        engine.rules,
        engine.onnx_path,
        target,
        station,
        engine.onnx,
        lambda path: OnnxPredictor(path, bundle.meta.preprocessing),
        _negated_head(bundle),
        log=lambda _line: None,
    )
    assert not result.passed and result.reason.startswith("int8 refused")
    assert result.images == len(station.split("val")) and result.calibration_images > 0
    assert result.noise_flips is not None and "for scale" in result.reason  # fp32 under noise was run
    assert stamped(target) and read_gate(target) == result  # the verdict is kept for this file
    # The line asked for int8 gets fp32 with the gate's reason, without quantizing again.
    before = target.stat().st_mtime_ns
    line = InferenceEngine(bundle, "int8", cache, data=str(tiny_station))
    assert line.backend == "onnx" and line.fallback == result.reason
    assert target.stat().st_mtime_ns == before
    assert "ONNX Runtime (int8 refused" in line.backend_line()
    assert line.backend_record()["gate"]["passed"] is False


def test_int8_is_built_judged_once_and_rebuilt_when_its_file_is_corrupt(tmp_path, bundle, tiny_station):
    cache = tmp_path / "cache"
    first = InferenceEngine(bundle, "int8", cache, data=str(tiny_station))
    target = int8_path(first.onnx_path)
    gate = read_gate(target)
    assert gate is not None and gate.int8_sha256 and gate.images > 0
    # Whatever the gate said, the line runs what it allows and says so.
    assert first.backend == ("int8" if gate.passed else "onnx")
    assert (first.fallback is None) == gate.passed
    out = first.infer([np.zeros((40, 40), np.uint8)])
    np.testing.assert_allclose(out.probabilities.sum(1), 1.0, atol=1e-4)
    target.write_bytes(target.read_bytes()[:100])  # a truncated cache file
    again = InferenceEngine(bundle, "int8", cache, data=str(tiny_station))
    assert stamped(target) and read_gate(target) is not None  # quantized and judged afresh
    assert again.backend in ("int8", "onnx")


def test_run_records_the_backend_and_the_gate_in_its_ledger_row(tmp_path, bundle, tiny_station):
    home, db = tmp_path / "home", f"sqlite:///{tmp_path / 'line.db'}"
    argv = ["run", "--source", f"{tiny_station}?fps=0", "--model", str(bundle.path), "--db", db]
    result = runner.invoke(app, [*argv, "--frames", "6", "--backend", "int8", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "inference: ONNX Runtime" in result.output
    ledger = Ledger(db)
    try:
        stats = ledger.runs()[0]["stats"]
    finally:
        ledger.close()
    record = stats["backend"]
    assert record["backend"] in ("int8", "onnx") and "macro_f1_int8" in record["gate"]
    assert (record["backend"] == "int8") == record["gate"]["passed"]


def test_models_bench_times_each_backend_and_writes_the_json_rows(tmp_path, bundle, tiny_station):
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app,
        [
            "models", "bench", str(bundle.path), "--backend", "torch,onnx,int8", "--data", str(tiny_station),
            "--rounds", "2", "--runs", "3", "--json", str(out), "--home", str(tmp_path / "home"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["threads"] == 1 and record["model"] == str(bundle.path)
    assert [row["backend"] for row in record["rows"]] == ["torch", "onnx", "int8"]
    assert all(row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"] for row in record["rows"])
    assert "int8 gate: int8" in result.output  # the gate's verdict beside the timing
    # ``models info`` says what this PC recorded for the bundle, and survives a careless record.
    info_args = ["models", "info", str(bundle.path), "--home", str(tmp_path / "home")]
    info = runner.invoke(app, info_args, env={"COLUMNS": "240"})
    assert (
        info.exit_code == 0
        and "int8 gate" in info.output
        and ("passed" in info.output or "refused" in info.output)
    )
    fp32 = InferenceEngine(bundle).onnx_target(tmp_path / "home" / "cache" / "onnx")
    auto_record(fp32).write_text(json.dumps({"pc": [], "choice": {"x": 1}, "p50_ms": 5}))
    again = runner.invoke(app, info_args, env={"COLUMNS": "240"})
    assert again.exit_code == 0 and "int8 gate" in again.output and "--backend auto" not in again.output
    refused = runner.invoke(app, ["models", "bench", str(bundle.path), "--backend", "fp16"])
    assert refused.exit_code == 2 and "unknown backend 'fp16'" in refused.output
