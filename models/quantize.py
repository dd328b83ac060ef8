"""int8 post-training quantization of an exported bundle: ONNX Runtime static QDQ, per-channel weights.

The line PCs are x86 CPUs with int8 dot-product instructions; an int8 graph should run the same
network in about half the time. Calibration wants images the network really sees: this module takes
them as an array of *preprocessed* inputs (``(N, C, H, W)`` float32, what :func:`models.preprocess.
preprocess` returns) so that it stays free of datasets and files beyond its own outputs; the
application picks a stratified sample of the station's training images (``inspector/line/int8.py``).

Some nodes are better left in fp32, for accuracy (a softmax or normalisation squeezed to 256
levels) or for speed (a QDQ pair ONNX Runtime cannot fuse costs more than the fp32 op it wraps).
Which ones is a measurement (``benchmarks/int8_ops.py``, BENCHMARKS.md "int8 on the line"), named
here by *groups*: an op type (``Softmax``, ``LayerNormalization``...), ``merge`` (every node inside
an LTM merge module, found by the exporter's name-scope metadata) or ``depthwise`` (a grouped Conv
with one input channel per group).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import ExportError
from models.files import atomic_write

MERGE = "merge"
DEPTHWISE = "depthwise"
# The first convolution and the first three stages of an EfficientNet, whether it is the hybrid's
# convolution stem (``CnnStemEmbed``'s ``cnn``) or the whole backbone (Lite0): at full resolution
# with few channels, where 256 levels cost the most (BENCHMARKS.md "int8 on the line").
EARLY_STEM = "early-stem"
_HYBRID_EARLY = (".cnn.bn1", ".cnn.conv_stem", ".cnn.blocks.0.", ".cnn.blocks.1.", ".cnn.blocks.2.")
_CNN_STEM = ("backbone.bn1", "backbone.conv_stem")  # timm's EfficientNet; a ViT has neither
_CNN_BLOCKS = ("backbone.blocks.0.", "backbone.blocks.1.", "backbone.blocks.2.")  # of EfficientNet blocks
# Chosen by benchmarks/int8_ops.py (BENCHMARKS.md "int8 on the line"): what stays fp32 by default.
# On the demo model, quantizing the early stem moved 4.9 % of the verdicts; keeping it fp32, 0.9 %.
DEFAULT_KEEP_FP32: tuple[str, ...] = ("Softmax", MERGE, EARLY_STEM)
# How activation ranges are taken from the calibration images (ONNX Runtime's CalibrationMethod).
METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
DEFAULT_METHOD = "minmax"
# A calibration sample: more images than this cost minutes and move the ranges by little.
MAX_CALIBRATION = 512


class QuantizeError(ExportError):
    """Quantization failed, or was asked for with unusable inputs."""


@dataclass(frozen=True)
class QuantizeReport:
    path: Path
    calibration_images: int
    keep_fp32: tuple[str, ...]
    fp32_nodes: int  # nodes left unquantized by ``keep_fp32``
    op_types: dict[str, int] = field(default_factory=dict)  # of the int8 graph, for the record


def _namespace(node) -> str:  # onnx.NodeProto
    for prop in node.metadata_props:
        if prop.key == "namespace":
            return prop.value
    return ""


def _is_depthwise(node, shapes: dict[str, Sequence[int]]) -> bool:
    if node.op_type != "Conv":
        return False
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    weight = shapes.get(node.input[1]) if len(node.input) > 1 else None
    return group > 1 and weight is not None and len(weight) == 4 and weight[1] == 1


def _in_early_stem(namespace: str) -> bool:
    if any(part in namespace for part in _HYBRID_EARLY):
        return True
    if any(part in namespace for part in _CNN_STEM):
        return True
    return "_efficientnet_blocks" in namespace and any(part in namespace for part in _CNN_BLOCKS)


def nodes_in(model, groups: Iterable[str]) -> list[str]:  # model: onnx.ModelProto
    """Names of the nodes of ``model`` that belong to any of ``groups``: op types, ``merge`` (a node
    the exporter placed inside an ``LTMMerge`` module), ``depthwise``, ``early-stem`` (see
    :data:`EARLY_STEM`), or ``scope:NAME`` (a node inside a module whose qualified name contains
    NAME, e.g. ``scope:patch_embed`` for the convolution stem, ``scope:head`` for the classifier)."""
    wanted = set(groups)
    scopes = [g.removeprefix("scope:") for g in wanted if g.startswith("scope:")]
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        namespace = _namespace(node)
        if (
            node.op_type in wanted
            or (MERGE in wanted and "LTMMerge" in namespace)
            or (DEPTHWISE in wanted and _is_depthwise(node, shapes))
            or (EARLY_STEM in wanted and _in_early_stem(namespace))
            or any(scope in namespace for scope in scopes)
        ):
            names.append(node.name)
    return names


def _reader(calibration: np.ndarray, input_name: str):
    from onnxruntime.quantization import CalibrationDataReader

    class ArrayReader(CalibrationDataReader):
        """One image per call (the graph is exported at batch 1)."""

        def __init__(self) -> None:
            self.index = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            if self.index >= len(calibration):
                return None
            self.index += 1
            return {input_name: calibration[self.index - 1 : self.index]}

        def rewind(self) -> None:
            self.index = 0

    return ArrayReader()


def check_calibration(calibration: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The calibration batch as float32 ``(N, *shape[1:])``; a clear error for anything else."""
    array = np.asarray(calibration)
    if array.ndim != 4 or len(array) == 0 or tuple(array.shape[1:]) != tuple(shape[1:]):
        raise QuantizeError(
            f"calibration images must be a (N, {', '.join(map(str, shape[1:]))}) batch, got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise QuantizeError("calibration images contain NaN or infinite values")
    return np.ascontiguousarray(array[:MAX_CALIBRATION], dtype=np.float32)


def quantize_onnx(
    fp32: str | Path,
    target: str | Path,
    calibration: np.ndarray,
    keep_fp32: Sequence[str] = DEFAULT_KEEP_FP32,
    overwrite: bool = True,
    method: str = DEFAULT_METHOD,
) -> QuantizeReport:
    """Write the int8 QDQ form of the ONNX graph ``fp32`` to ``target`` (atomically).

    Activations are unsigned 8-bit with asymmetric MinMax ranges from ``calibration``, weights
    signed 8-bit per output channel (the U8S8 pair x86 VNNI kernels run); nodes in ``keep_fp32``
    groups stay fp32.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if method not in METHODS:
        raise QuantizeError(f"unknown calibration method {method!r} (choose from {', '.join(METHODS)})")
    source = Path(fp32)
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # onnx raises DecodeError, OSError... for a bad file
        raise QuantizeError(f"{source}: not a readable ONNX model ({str(exc).splitlines()[0]})") from None
    graph_input = model.graph.input[0]
    shape = [d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    array = check_calibration(calibration, shape)
    excluded = nodes_in(model, keep_fp32)

    def write(staging: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="ltm-int8-") as scratch:
            logger = logging.getLogger()
            level = logger.level
            logger.setLevel(logging.ERROR)  # ORT logs a line per node it cannot quantize
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    quantize_static(
                        model,
                        str(staging),
                        _reader(array, graph_input.name),
                        quant_format=QuantFormat.QDQ,
                        per_channel=True,
                        activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        nodes_to_exclude=excluded,
                        calibrate_method=getattr(CalibrationMethod, METHODS[method]),
                        extra_options={"CalibTensorRangeSymmetric": False},
                        calibration_cache_path=Path(scratch) / "ranges",
                    )
            finally:
                logger.setLevel(level)

    try:
        atomic_write(target, write, overwrite)
    except (QuantizeError, OSError):
        raise
    except Exception as exc:
        raise QuantizeError(
            f"{target}: int8 quantization failed: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    quantized = onnx.load(str(target), load_external_data=False)
    counts: dict[str, int] = {}
    for node in quantized.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return QuantizeReport(Path(target), len(array), tuple(keep_fp32), len(excluded), counts)
