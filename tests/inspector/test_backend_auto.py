"""``--backend auto``: ONNX Runtime when the bundle exports with parity, else PyTorch, with the
reason kept for the run's first status line (issue 12)."""

from __future__ import annotations

import numpy as np

from inspector.line.inference import InferenceEngine
from models.bundle import Bundle, meta_for
from models.network import InspectionNet


def _engine(tmp_path, spec, merge: str) -> InferenceEngine:
    net = InspectionNet(spec, 2, merge).eval()
    if merge == "tome":
        net.set_schedule([2, 2, 2, 2])
    return InferenceEngine(Bundle(net, meta_for(net, ["ok", "ng"])), "auto", tmp_path / "onnx")


def test_auto_picks_onnx_when_the_export_has_parity(tmp_path, tiny_vit_spec):
    engine = _engine(tmp_path, tiny_vit_spec, "ltm")
    assert engine.backend == "onnx" and engine.onnx is not None and engine.fallback is None
    out = engine.infer([np.zeros((64, 64), np.uint8)])
    np.testing.assert_allclose(out.probabilities.sum(1), 1.0, atol=1e-5)


def test_auto_falls_back_to_torch_and_says_why(tmp_path, tiny_vit_spec):
    engine = _engine(tmp_path, tiny_vit_spec, "tome")  # ToMe's gather/scatter merge does not export
    assert engine.backend == "torch" and engine.onnx is None
    assert "ToMe" in engine.fallback
    assert engine.infer([np.zeros((64, 64), np.uint8)]).probabilities.shape == (1, 2)
