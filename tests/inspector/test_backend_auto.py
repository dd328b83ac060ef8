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


def test_bundles_with_the_same_weights_and_another_schedule_get_their_own_graph(tmp_path, tiny_vit_spec):
    """The cache used to be keyed by the weights' hash alone: an unmerged twin saved from the same
    weights was handed the merged model's graph (and its int8 gate), and timed as the same model."""
    import dataclasses

    from models.bundle import load_bundle, save_bundle

    net = InspectionNet(tiny_vit_spec, 2, "ltm").eval()
    net.set_schedule([None, [3, 3], None, [2, 2]])
    meta = meta_for(net, ["ok", "ng"])
    merged = load_bundle(save_bundle(net, meta, tmp_path / "merged"))
    net.set_schedule([None] * 4)
    twin_meta = dataclasses.replace(meta, schedule=net.schedule())
    twin = load_bundle(save_bundle(net, twin_meta, tmp_path / "twin"))
    engines = [InferenceEngine(b, "onnx", tmp_path / "onnx") for b in (merged, twin)]
    assert engines[0].sha256 == engines[1].sha256  # the same weights file...
    assert engines[0].onnx_path != engines[1].onnx_path  # ...two graphs
    frame = [np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)]
    for engine, bundle in zip(engines, (merged, twin), strict=True):
        expected = InferenceEngine(bundle, "torch").infer(frame).probabilities
        np.testing.assert_allclose(engine.infer(frame).probabilities, expected, atol=1e-4)
