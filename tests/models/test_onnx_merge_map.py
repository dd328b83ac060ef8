"""The exported graph's ``merge_map`` output: the same map PyTorch gives, so the Live screen's
overlay can run on ONNX Runtime (issue 25, item 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.backbones import BackboneSpec
from models.families.base import image_importance
from models.network import InspectionNet
from models.onnx_export import MAP_OUTPUT, PARITY_TOLERANCE, OnnxPredictor, export_onnx
from models.preprocess import Preprocessing


def _learned_ltm(spec: BackboneSpec) -> InspectionNet:
    """A tiny LTM net whose masks are far from pooling, so the map is not a flat pattern."""
    net = InspectionNet(spec, 3, "ltm", mask="content")
    net.set_schedule([None, [3, 3], None, [2, 1]])
    with torch.no_grad():
        for merger in net.mergers:
            if hasattr(merger, "sim_gain"):
                merger.sim_gain.fill_(2.0)
                merger.locality.fill_(0.3)
    return net.eval()


def _torch_maps(net: InspectionNet, batch: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = net.run(batch, track_maps=True)
    grids = image_importance(out.merge_maps, len(batch))
    assert grids is not None
    return grids.numpy()


def _onnx_maps(path, net: InspectionNet, batch: torch.Tensor) -> np.ndarray:
    prep = Preprocessing(size=net.spec.img_size, channels=net.spec.in_chans)
    predictor = OnnxPredictor(path, prep)
    assert predictor.has_map
    probabilities, logits, maps = predictor.run_with_map(batch.numpy())
    assert maps is not None and logits is not None
    return maps


def test_a_tiny_ltm_nets_map_matches_torch(tmp_path, tiny_vit_spec):
    net = _learned_ltm(tiny_vit_spec)
    path = export_onnx(net, tmp_path / "m.onnx", samples=2).path
    batch = torch.randn(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = _torch_maps(net, batch)
    got = _onnx_maps(path, net, batch)
    assert got.shape == expected.shape == (3, 4, 4)
    np.testing.assert_allclose(got, expected, atol=PARITY_TOLERANCE)
    assert expected.std() > 1e-3  # the merges left a pattern a parity check can miss
    assert not np.allclose(got[0], got[1], atol=1e-4)  # and it follows the image, not a constant


def test_the_demo_models_map_matches_torch(tmp_path):
    from inspector.line.demo import demo_model_path
    from models.bundle import load_bundle

    net = load_bundle(demo_model_path()).net.eval()
    path = export_onnx(net, tmp_path / "demo.onnx", samples=1).path
    spec = net.spec
    batch = torch.randn(
        2, spec.in_chans, spec.img_size, spec.img_size, generator=torch.Generator().manual_seed(2)
    )
    expected = _torch_maps(net, batch)
    np.testing.assert_allclose(_onnx_maps(path, net, batch), expected, atol=PARITY_TOLERANCE)
    assert expected.max() < 0.5  # the demo model merges every patch into bigger tokens


def test_without_the_map_or_for_a_cnn_the_graph_has_no_map_output(tmp_path, tiny_vit_spec):
    plain = export_onnx(_learned_ltm(tiny_vit_spec), tmp_path / "plain.onnx", samples=1, merge_map=False)
    predictor = OnnxPredictor(plain.path, Preprocessing(size=64, channels=1))
    assert not predictor.has_map and MAP_OUTPUT not in predictor.output_names
    batch = np.zeros((2, 1, 64, 64), np.float32)
    probabilities, logits, maps = predictor.run_with_map(batch)  # an older file: no map, no error
    assert maps is None and probabilities.shape == (2, 3) and logits is not None

    cnn = InspectionNet(BackboneSpec("tf_efficientnet_lite0", 64, 1), 2, "none").eval()
    report = export_onnx(cnn, tmp_path / "cnn.onnx", samples=1)
    assert not OnnxPredictor(report.path, Preprocessing(size=64, channels=1)).has_map


@pytest.mark.parametrize("mode", ["none", "ltm"])
def test_a_mobilevit_map_is_one_grid_per_image(mode):
    """MobileViT merges each pixel position of a patch as its own sequence: B × patch_area maps,
    averaged to one per image (the engine zipped them with the images and failed)."""
    net = InspectionNet(BackboneSpec("mobilevit_xxs", 96, 3), 2, mode).eval()
    if mode == "ltm":
        net.set_schedule([[2, 2] if i == 0 else None for i in range(len(net.mergers))])
    maps = _torch_maps(net, torch.randn(2, 3, 96, 96))
    assert maps.shape[0] == 2 and maps.ndim == 3
    assert (maps > 0).all() and (maps <= 1 + 1e-5).all()
    assert (maps.min() < 0.99) == (mode == "ltm")
