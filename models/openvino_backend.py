"""OpenVINO as a runtime for the exported graph, and NNCF's int8 of it — an optional extra.

``pip install 'ltm-inspector[openvino]'`` brings both in. Without them the backend is absent and
:func:`unavailable` says why in one line; nothing else in the product imports OpenVINO.

The fp32 backend compiles the same ONNX file ONNX Runtime runs (one export, one parity check); the
int8 one is NNCF's post-training quantization of it (``ModelType.TRANSFORMER``: NNCF keeps the
softmax and normalisation in float itself), calibrated on the same array of preprocessed training
images as ONNX Runtime's int8 and saved as OpenVINO IR (``.xml`` + ``.bin``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.errors import ExportError
from models.files import output_target, sha256_file
from models.quantize import EARLY_STEM, QuantizeError, check_calibration

MAP_OUTPUT = "merge_map"
# What NNCF leaves in float beyond its own choice: the early stem (BENCHMARKS.md "int8 on the line").
KEEP_FP32: tuple[str, ...] = (EARLY_STEM,)


def unavailable() -> str | None:
    """None when OpenVINO imports, else the one-line reason the backend is absent."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "OpenVINO is not installed (pip install 'ltm-inspector[openvino]')"
    return None


def int8_unavailable() -> str | None:
    """None when NNCF (OpenVINO's int8) imports too, else why the backend is absent."""
    reason = unavailable()
    if reason:
        return reason
    try:
        import nncf  # noqa: F401
    except ImportError:
        return "NNCF is not installed (pip install 'ltm-inspector[openvino]')"
    return None


class OpenVinoPredictor:
    """Probabilities, logits and the merge map from an ONNX or IR file on OpenVINO's CPU plugin,
    batch 1 per image: the same calls as :class:`models.onnx_export.OnnxPredictor`."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import openvino as ov

        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError with a long C++ trace
            raise ExportError(f"{path}: OpenVINO cannot load it ({str(exc).splitlines()[0]})") from exc
        self.request = compiled.create_infer_request()
        self.input_name = compiled.inputs[0].get_any_name()
        self.output_names = [output.get_any_name() for output in compiled.outputs]
        self.has_map = MAP_OUTPUT in self.output_names

    def run_one(self, image: np.ndarray) -> list[np.ndarray]:
        self.request.infer({self.input_name: image})
        return [self.request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]

    def run_with_map(
        self, batch: np.ndarray, want_map: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        runs = [self.run_one(np.ascontiguousarray(batch[i : i + 1])) for i in range(len(batch))]
        names = self.output_names
        probabilities = np.concatenate([run[0] for run in runs])
        logits = np.concatenate([run[names.index("logits")] for run in runs]) if "logits" in names else None
        with_map = want_map and self.has_map
        maps = np.concatenate([run[names.index(MAP_OUTPUT)] for run in runs]) if with_map else None
        return probabilities, logits, maps

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        probabilities, logits, _ = self.run_with_map(batch, want_map=False)
        return probabilities, logits


def ir_stamp(xml: Path) -> str:
    """One digest for the IR pair (the ``.xml`` graph and its ``.bin`` weights)."""
    return f"{sha256_file(xml)}:{sha256_file(xml.with_suffix('.bin'))}"


def _ignored_names(fp32: str | Path, keep_fp32: Sequence[str]) -> list[str]:
    """The ONNX nodes of ``keep_fp32`` groups by node and output name (OpenVINO's importer names an
    operation after one or the other), for NNCF's ignored scope."""
    import onnx

    from models.quantize import nodes_in

    model = onnx.load(str(fp32), load_external_data=False)
    wanted = set(nodes_in(model, keep_fp32))
    names: list[str] = []
    for node in model.graph.node:
        if node.name in wanted:
            # OpenVINO splits a Conv with bias into "<name>/WithoutBiases" and an Add.
            names += [node.name, f"{node.name}/WithoutBiases", *node.output]
    return names


def quantize_openvino(
    fp32: str | Path, xml: str | Path, calibration: np.ndarray, keep_fp32: Sequence[str] = KEEP_FP32
) -> Path:
    """NNCF int8 of the ONNX graph ``fp32``, written as IR to ``xml`` (and its ``.bin``).

    ``keep_fp32``: groups as in :func:`models.quantize.nodes_in` that NNCF leaves in float (it
    keeps softmax and normalisation itself); the early stem by default, as for ONNX Runtime.

    Both files are written in a scratch folder beside the target and renamed into place, weights
    first, so a crash leaves either the old pair or a pair whose stamp no longer matches (rebuilt).
    """
    import nncf
    import openvino as ov

    target = Path(xml)
    output_target(target)
    output_target(target.with_suffix(".bin"))
    core = ov.Core()
    try:
        model = core.read_model(str(fp32))
    except Exception as exc:
        raise QuantizeError(f"{fp32}: OpenVINO cannot read it ({str(exc).splitlines()[0]})") from exc
    shape = [int(d) for d in model.inputs[0].get_partial_shape().to_shape()]
    array = check_calibration(calibration, shape)
    dataset = nncf.Dataset([array[i : i + 1] for i in range(len(array))])
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = nncf.quantize(
                model,
                dataset,
                subset_size=len(array),
                model_type=nncf.ModelType.TRANSFORMER,
                ignored_scope=nncf.IgnoredScope(names=_ignored_names(fp32, keep_fp32), validate=False),
            )
    except Exception as exc:
        raise QuantizeError(
            f"{fp32}: NNCF quantization failed: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None
    finally:
        nncf_log.setLevel(level)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", dir=target.parent) as scratch:
        staging = Path(scratch) / target.name
        ov.save_model(quantized, str(staging), compress_to_fp16=False)
        os.replace(staging.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(staging, target)
    return target
