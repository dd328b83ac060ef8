"""int8 QDQ quantization of an exported graph (issue 25): it runs, keeps the chosen groups in fp32,
stays near fp32 on a small network, and refuses unusable calibration in one line."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from models.onnx_export import OnnxPredictor, export_onnx
from models.preprocess import Preprocessing
from models.quantize import QuantizeError, nodes_in, quantize_onnx


@pytest.fixture
def ltm_onnx(tmp_path, tiny_vit_spec):
    from models.network import InspectionNet

    net = InspectionNet(tiny_vit_spec, 2, "ltm").eval()
    net.set_schedule([None, [3, 3], None, [2, 2]])  # two merges: a default tiny LTM net merges nothing
    path = tmp_path / "fp32.onnx"
    export_onnx(net, path)
    return path


def _calibration(n: int = 16) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 1, 64, 64)).astype(np.float32)


def test_int8_graph_runs_near_fp32_and_leaves_the_chosen_groups_fp32(tmp_path, ltm_onnx):
    graph = onnx.load(str(ltm_onnx))
    kept = nodes_in(graph, ["Softmax", "merge"])
    merge = nodes_in(graph, ["merge"])
    assert merge and set(merge) < set(kept)  # the LTM merge modules are found by name scope
    report = quantize_onnx(ltm_onnx, tmp_path / "int8.onnx", _calibration(), keep_fp32=("Softmax", "merge"))
    assert report.fp32_nodes == len(kept) and report.calibration_images == 16
    assert report.op_types.get("QuantizeLinear", 0) > 0 and report.op_types.get("DequantizeLinear", 0) > 0
    prep = Preprocessing(size=64, channels=1, mean=[0.5], std=[0.25])
    inputs = _calibration(8) * 0.5
    fp32 = OnnxPredictor(ltm_onnx, prep).run_outputs(inputs)[0]
    int8 = OnnxPredictor(tmp_path / "int8.onnx", prep).run_outputs(inputs)[0]
    np.testing.assert_allclose(int8.sum(1), 1.0, atol=1e-4)
    assert np.abs(int8 - fp32).max() < 0.1  # a random tiny net: loose, but far from a broken graph


def test_keeping_nothing_fp32_quantizes_more_nodes(tmp_path, ltm_onnx):
    everything = quantize_onnx(ltm_onnx, tmp_path / "all.onnx", _calibration(4), keep_fp32=())
    kept = quantize_onnx(ltm_onnx, tmp_path / "kept.onnx", _calibration(4), keep_fp32=("Softmax", "merge"))
    assert everything.fp32_nodes == 0
    assert everything.op_types["QuantizeLinear"] > kept.op_types["QuantizeLinear"]


@pytest.mark.parametrize(
    "calibration, message",
    [
        (np.zeros((0, 1, 64, 64), np.float32), "calibration images must be"),
        (np.zeros((4, 3, 64, 64), np.float32), "calibration images must be"),
        (np.full((4, 1, 64, 64), np.nan, np.float32), "NaN or infinite"),
    ],
)
def test_unusable_calibration_is_one_line_and_writes_nothing(tmp_path, ltm_onnx, calibration, message):
    target = tmp_path / "int8.onnx"
    with pytest.raises(QuantizeError, match=message) as info:
        quantize_onnx(ltm_onnx, target, calibration)
    assert "\n" not in str(info.value) and not target.exists()


def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(QuantizeError, match="not a readable ONNX model"):
        quantize_onnx(bad, tmp_path / "int8.onnx", _calibration(2))


def test_the_early_stem_group_finds_an_efficientnets_first_stages_and_nothing_in_a_vit(ltm_onnx, tmp_path):
    """The default keeps the early stem fp32 (it moved 4.9 % of the demo model's verdicts in int8)."""
    from models.backbones import resolve_backbone
    from models.network import InspectionNet

    assert nodes_in(onnx.load(str(ltm_onnx)), ["early-stem"]) == []
    lite0 = InspectionNet(resolve_backbone("lite0", 64, 1), 2, "none").eval()
    export_onnx(lite0, tmp_path / "lite0.onnx")
    graph = onnx.load(str(tmp_path / "lite0.onnx"))
    early, convs = nodes_in(graph, ["early-stem"]), nodes_in(graph, ["Conv"])
    assert 0 < len(set(early) & set(convs)) < len(convs) // 2
