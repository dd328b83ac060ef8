"""The line's ONNX engine gives the merge maps the overlay needs, and a cache written before the
graph had them is not reused (issue 25, item 5)."""

from __future__ import annotations

import numpy as np
import torch

from inspector.line.inference import InferenceEngine
from models.bundle import Bundle, meta_for
from models.network import InspectionNet
from models.onnx_export import export_onnx


def _bundle(spec) -> Bundle:
    net = InspectionNet(spec, 2, "ltm", mask="content")
    net.set_schedule([None, [3, 3], None, [2, 1]])
    with torch.no_grad():
        for merger in net.mergers:
            merger.sim_gain.fill_(2.0)
            merger.locality.fill_(0.3)
    net.eval()
    return Bundle(net, meta_for(net, ["ok", "ng"]))


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(2)]


def test_the_onnx_line_gives_the_same_maps_as_torch(tmp_path, tiny_vit_spec):
    bundle = _bundle(tiny_vit_spec)
    onnx = InferenceEngine(bundle, "auto", tmp_path / "onnx")
    assert onnx.backend == "onnx"
    frames = _frames()
    got = onnx.infer(frames, track_maps=True)
    expected = InferenceEngine(bundle, "torch").infer(frames, track_maps=True)
    assert got.maps is not None and expected.maps is not None and len(got.maps) == 2
    for ours, theirs in zip(got.maps, expected.maps, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-4)
    assert onnx.infer(frames).maps is None  # no overlay on screen: the map is not fetched


def test_a_cache_from_before_the_map_output_is_exported_again(tmp_path, tiny_vit_spec):
    """The old key (``<sha>.onnx``, verified) held a graph without ``merge_map``: reusing it would
    leave the overlay blank on ONNX, so the key names the export format."""
    from models.files import atomic_write_text, sha256_file

    bundle = _bundle(tiny_vit_spec)
    cache = tmp_path / "onnx"
    cache.mkdir()
    engine = InferenceEngine(bundle, "torch")
    old = cache / f"{engine.sha256[:16]}.onnx"
    export_onnx(bundle.net, old, samples=1, merge_map=False)
    atomic_write_text(old.with_name(old.name + ".sha256"), sha256_file(old) + "\n")

    onnx = InferenceEngine(bundle, "onnx", cache)
    assert onnx.onnx is not None and onnx.onnx.has_map
    assert onnx.infer(_frames(), track_maps=True).maps is not None
    assert len(list(cache.glob("*.onnx"))) == 2  # the old file is left alone, not used
