"""OpenVINO as a line backend (issue 25 item 3), an optional extra: the same exported graph as ONNX
Runtime gives the same probabilities and merge map; NNCF's int8 writes an IR that runs. Where the
extra is absent, asking for it is one line (that test runs everywhere)."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.errors import InspectorError
from inspector.line.inference import InferenceEngine
from models.bundle import Bundle, meta_for
from models.network import InspectionNet


@pytest.fixture
def bundle(tiny_vit_spec) -> Bundle:
    net = InspectionNet(tiny_vit_spec, 2, "ltm").eval()
    net.set_schedule([None, [3, 3], None, [2, 2]])
    return Bundle(net, meta_for(net, ["ok", "ng"]))


def _inputs(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 1, 64, 64)).astype(np.float32)


def test_asking_for_openvino_without_it_is_one_line(tmp_path, bundle, monkeypatch):
    import models.openvino_backend as backend

    monkeypatch.setattr(backend, "unavailable", lambda: "OpenVINO is not installed (pip install ...)")
    with pytest.raises(InspectorError, match="the openvino backend is absent: OpenVINO is not installed"):
        InferenceEngine(bundle, "openvino", tmp_path / "onnx")
    # auto does not consider it, and stays on ONNX Runtime
    assert InferenceEngine(bundle, "auto", tmp_path / "onnx").backend == "onnx"


def test_openvino_gives_onnx_runtimes_probabilities_and_merge_map(tmp_path, bundle):
    pytest.importorskip("openvino")
    from models.openvino_backend import OpenVinoPredictor

    ort = InferenceEngine(bundle, "onnx", tmp_path / "onnx")
    predictor = OpenVinoPredictor(ort.onnx_path)
    inputs = _inputs()
    probabilities, logits, maps = predictor.run_with_map(inputs)
    expected, expected_logits, expected_maps = ort.onnx.run_with_map(inputs)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    np.testing.assert_allclose(maps, expected_maps, atol=1e-4)
    engine = InferenceEngine(bundle, "openvino", tmp_path / "onnx")
    assert engine.backend == "openvino" and engine.backend_line() == "inference: OpenVINO"


def test_nncf_int8_writes_an_ir_that_runs(tmp_path, bundle):
    pytest.importorskip("nncf")
    from models.openvino_backend import OpenVinoPredictor, ir_stamp, quantize_openvino

    ort = InferenceEngine(bundle, "onnx", tmp_path / "onnx")
    xml = quantize_openvino(ort.onnx_path, tmp_path / "ov" / "int8.xml", _inputs(16))
    assert xml.is_file() and xml.with_suffix(".bin").is_file() and ir_stamp(xml)
    probabilities, _, _ = OpenVinoPredictor(xml).run_with_map(_inputs(2))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)
    assert not [p for p in (tmp_path / "ov").iterdir() if p.name.startswith(".")]  # no scratch left
