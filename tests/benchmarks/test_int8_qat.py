"""benchmarks.int8_qat's premise: weights snapped onto its grid are the weights ONNX Runtime's int8
graph holds, exactly, after BatchNorm folding - so int8 and fp32 then differ by activations alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.int8_qat import Simulated
from models.backbones import BackboneSpec
from models.network import InspectionNet
from models.onnx_export import export_onnx
from models.quantize import quantize_onnx

SPEC = BackboneSpec(
    "vit_tiny_patch16_224",
    img_size=32,
    in_chans=3,
    overrides={"cnn_stem": "tf_efficientnet_lite0", "patch_size": 16, "embed_dim": 32, "depth": 1,
               "num_heads": 2, "class_token": False, "global_pool": "avg"},
)  # fmt: skip


def _hybrid() -> InspectionNet:
    torch.manual_seed(0)
    net = InspectionNet(SPEC, 2, "none").eval()
    with torch.no_grad():  # BatchNorm that really rescales each channel, so folding matters
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(-2, 2)
                module.running_var.uniform_(0.1, 4)
                module.running_mean.uniform_(-1, 1)
    return net


def _stem_weights(path, quantized: bool) -> dict[str, np.ndarray]:
    """The stem convolutions' weights: of an fp32 graph as stored, of an int8 graph only those it
    holds in int8 (dequantized), so a conv left in fp32 is missing rather than equal to itself."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    weights = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and values.get(node.input[0]) is not None:
            stored = values[node.input[0]]
            if stored.dtype == np.int8 and stored.ndim == 4:
                scale = values[node.input[1]].reshape(-1, 1, 1, 1)
                weights[node.input[0].removesuffix("_quantized")] = stored.astype(np.float32) * scale
        if not quantized and node.op_type == "Conv" and node.input[1] in values:
            weights[node.input[1]] = values[node.input[1]]
    return {name: w for name, w in weights.items() if ".cnn." in name}


@pytest.mark.parametrize("snap", [True, False])
def test_snapped_weights_survive_ort_int8_exactly_and_unsnapped_ones_do_not(tmp_path, snap):
    net = _hybrid()
    if snap:
        net = Simulated(net).snap()
    export_onnx(net, tmp_path / "fp32.onnx", samples=2, merge_map=False)
    calibration = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    quantize_onnx(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", calibration, keep_fp32=())
    fp32 = _stem_weights(tmp_path / "fp32.onnx", quantized=False)
    int8 = _stem_weights(tmp_path / "int8.onnx", quantized=True)
    assert fp32 and set(fp32) == set(int8)  # every stem conv was quantized, BatchNorm folded into it
    worst = max(float(np.abs(int8[k] - fp32[k]).max() / np.abs(fp32[k]).max()) for k in fp32)
    if snap:
        assert worst < 1e-5
    else:
        assert worst > 1e-3  # half a step of 127 levels: rounding the test would otherwise miss
