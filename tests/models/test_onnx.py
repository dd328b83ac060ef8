"""ONNX export parity with PyTorch, and the ONNX Runtime predictor's preprocessing contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.errors import ExportError
from models.network import InspectionNet
from models.onnx_export import PARITY_TOLERANCE, OnnxPredictor, export_onnx
from models.preprocess import Preprocessing, preprocess


@pytest.mark.parametrize(
    ("mode", "pool", "normalize"),
    [("none", "token", "dataset"), ("ltm", "token", "dataset"), ("ltm", "max", "image")],
)
def test_export_parity(tmp_path, tiny_vit_spec, mode, pool, normalize):
    spec = replace(tiny_vit_spec, overrides={**tiny_vit_spec.overrides, "global_pool": pool})
    net = InspectionNet(spec, 3, mode)
    if mode == "ltm":
        net.set_schedule([None, [3, 3], None, [2, 1]])
        with torch.no_grad():
            for merger in net.mergers:
                if hasattr(merger, "sim_gain"):
                    merger.sim_gain.fill_(2.0)
                    merger.locality.fill_(0.3)
    report = export_onnx(net, tmp_path / "m.onnx", samples=4)
    assert report.max_abs_diff <= PARITY_TOLERANCE
    assert report.opset >= 17

    prep = Preprocessing(size=64, channels=1, mean=[0.5], std=[0.25], normalize=normalize)
    images = [np.random.default_rng(i).integers(0, 65535, (80, 50), dtype=np.uint16) for i in range(2)]
    probs = OnnxPredictor(report.path, prep).predict(images)
    with torch.no_grad():
        expected = torch.softmax(net.eval()(preprocess(images, prep)), -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


def test_tome_export_is_refused(tmp_path, tiny_vit_spec):
    with pytest.raises(ExportError, match="ToMe"):
        export_onnx(InspectionNet(tiny_vit_spec, 2, "tome"), tmp_path / "t.onnx")
    assert not (tmp_path / "t.onnx").exists()


def test_bad_onnx_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ExportError, match="not a loadable ONNX model"):
        OnnxPredictor(bad, Preprocessing())


def test_probabilities_and_logits_come_from_one_run_per_image(tmp_path, tiny_vit_spec):
    """The live pipeline needs both outputs; it must not pay for the network twice per frame."""
    net = InspectionNet(tiny_vit_spec, 3, "none").eval()
    path = export_onnx(net, tmp_path / "m.onnx", samples=2).path
    predictor = OnnxPredictor(path, Preprocessing(size=64, channels=1, mean=[0.5], std=[0.25]))
    real_run, calls = predictor.session.run, []
    predictor.session.run = lambda *args, **kwargs: calls.append(1) or real_run(*args, **kwargs)
    batch = np.random.default_rng(0).standard_normal((3, 1, 64, 64)).astype(np.float32)
    probabilities, logits = predictor.run_outputs(batch)
    assert len(calls) == 3
    np.testing.assert_allclose(probabilities, torch.softmax(torch.from_numpy(logits), -1).numpy(), atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(logits, net(torch.from_numpy(batch)).numpy(), atol=1e-4)


def test_export_keeps_an_existing_file_unless_overwrite_and_writes_plain_permissions(tmp_path, tiny_vit_spec):
    """An unrelated file was overwritten without --force, and exports were 0600 (mkstemp's mode)."""
    import os
    import stat

    net = InspectionNet(tiny_vit_spec, 2, "none")
    mine = tmp_path / "notes.onnx"
    mine.write_text("not yours")
    with pytest.raises(FileExistsError, match="--force"):
        export_onnx(net, mine, samples=1)
    assert mine.read_text() == "not yours"
    previous = os.umask(0o022)
    try:
        path = export_onnx(net, mine, samples=1, overwrite=True).path
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.onnx"]
