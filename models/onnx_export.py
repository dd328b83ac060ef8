"""ONNX export with a parity check, and an ONNX Runtime predictor with the bundle's preprocessing.

Unmerged and LTM networks export with static shapes (batch 1, the bundle's image size): LTM is
dense matmuls and a softmax, so the graph is plain. The exported graph outputs class probabilities
(``probabilities``), the logits they come from (``logits``, for the energy score) and, for a
transformer, the merge map the app overlays on the part (``merge_map``, (1, h, w), the same
:func:`models.network.image_importance` PyTorch gives): the operator's screen then runs on ONNX
Runtime like ``inspector run`` instead of staying on PyTorch for the map.
Every export is checked against PyTorch on a fixed, seeded set of inputs; an export whose
probabilities or merge map differ by more than 1e-4 is deleted and reported as an
:class:`ExportError`.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.attention import unfused_attention
from models.errors import ExportError, ModelError
from models.families.base import image_importance
from models.files import atomic_write, output_target, verified_cache
from models.network import InspectionNet
from models.preprocess import Preprocessing, preprocess

OPSET = 18
PARITY_TOLERANCE = 1e-4
MAP_OUTPUT = "merge_map"
# What a graph written by this module holds; a cache keys its files on it, so a file written before
# the merge map became an output (format 1) is exported again rather than leaving the app mapless.
EXPORT_FORMAT = 2


def exports_map(net: InspectionNet) -> bool:
    """Whether the net has tokens, hence a merge map (an unmerged transformer's is all ones)."""
    return net.adapter.has_tokens


class _LineOutputs(nn.Module):
    """Probabilities for the line, logits beside them for the out-of-distribution energy score,
    and the merge map for the operator's overlay."""

    def __init__(self, net: InspectionNet, with_map: bool) -> None:
        super().__init__()
        self.net = net
        self.with_map = with_map

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.with_map:
            logits = self.net(images)
            return torch.softmax(logits, dim=-1), logits
        out = self.net.run(images, track_maps=True)
        importance = image_importance(out.merge_maps, images.shape[0])
        assert importance is not None  # exports_map: every token family tracks a map
        return torch.softmax(out.logits, dim=-1), out.logits, importance


@dataclass(frozen=True)
class ExportReport:
    path: Path
    opset: int
    max_abs_diff: float
    samples: int


def parity_inputs(net: InspectionNet, samples: int = 8, seed: int = 0) -> torch.Tensor:
    """The fixed batch both runtimes are compared on."""
    generator = torch.Generator().manual_seed(seed)
    spec = net.spec
    return torch.randn(samples, spec.in_chans, spec.img_size, spec.img_size, generator=generator)


def export_onnx(
    net: InspectionNet, path: str | Path, samples: int = 8, overwrite: bool = False, merge_map: bool = True
) -> ExportReport:
    """Export ``net`` to ``path`` (written atomically) and check it against PyTorch.

    ``merge_map=False`` leaves the map out (a graph for timing the classifier alone); a CNN has
    none either way.

    Like every output it goes through :func:`models.files.atomic_write`: it takes the place of a
    regular file only, and of an existing one only with ``overwrite`` (the CLI's ``--force``),
    checked before the export runs so that a refusal costs nothing.
    """
    if net.merge_mode == "tome":
        raise ExportError("ToMe models are not exported (gather/scatter merging); use LTM for ONNX")
    target = Path(path)
    output_target(target, overwrite)
    net.eval()
    with_map = merge_map and exports_map(net)
    wrapper = _LineOutputs(net, with_map).eval()
    example = torch.zeros(1, net.spec.in_chans, net.spec.img_size, net.spec.img_size)
    diff = float("nan")

    def write(staging: Path) -> None:
        nonlocal diff
        # Explicit attention matmuls: the exporter's decomposition of fused attention with a float
        # bias mis-derives strides; ONNX Runtime fuses the plain form again anyway.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), unfused_attention():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                opset_version=OPSET,
                input_names=["images"],
                output_names=["probabilities", "logits"] + ([MAP_OUTPUT] if with_map else []),
                optimize=True,
                verbose=False,
            )
            program.save(str(staging))
        inputs = parity_inputs(net, samples)
        with torch.no_grad():
            expected = [t.numpy() for t in wrapper(inputs)]
        session = _session(staging)
        runs = [session.run(None, {"images": inputs[i : i + 1].numpy()}) for i in range(samples)]
        got = np.concatenate([run[0] for run in runs])
        diff = float(np.abs(got - expected[0]).max())
        if not diff <= PARITY_TOLERANCE:
            raise ExportError(
                f"{target}: ONNX output differs from PyTorch by {diff:.2e} (> {PARITY_TOLERANCE})"
            )
        if with_map:
            map_diff = float(np.abs(np.concatenate([run[2] for run in runs]) - expected[2]).max())
            if not map_diff <= PARITY_TOLERANCE:
                raise ExportError(
                    f"{target}: ONNX merge map differs from PyTorch by {map_diff:.2e} (> {PARITY_TOLERANCE})"
                )

    try:
        atomic_write(target, write, overwrite)
    except (ExportError, OSError):
        raise
    except Exception as exc:
        raise ExportError(
            f"{target}: ONNX export failed: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc
    return ExportReport(target, OPSET, diff, samples)


def _session(path: Path):  # onnxruntime has no stable public type to name here
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def cached_predictor(net: InspectionNet, target: Path, preprocessing: Preprocessing) -> OnnxPredictor:
    """A predictor on ``net``'s export cached at ``target``, exported again when the file is missing,
    does not match its stamp, or will not load in this ONNX Runtime (:func:`models.files.verified_cache`).

    ``target``'s name must say what the graph derives from (the line keys it on the bundle's weights,
    the fields that shape the network and :data:`EXPORT_FORMAT`). Raises :class:`ExportError` (or the
    OSError of an unwritable cache) when it cannot export.
    """

    def export(path: Path) -> None:
        export_onnx(net, path, overwrite=True)

    return verified_cache(
        target, export, lambda path, _digest: OnnxPredictor(path, preprocessing), unusable=(ModelError,)
    )


class OnnxPredictor:
    """Class probabilities from raw pixel arrays through ONNX Runtime, batch 1 per image."""

    def __init__(self, path: str | Path, preprocessing: Preprocessing) -> None:
        try:
            self.session = _session(Path(path))
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ExportError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from exc
        self.preprocessing = preprocessing
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]
        self.has_map = MAP_OUTPUT in self.output_names  # files from ``inspector export`` before it: no

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and logits (None for older files) from ONE run per image.

        The live pipeline needs both (verdict and OOD energy); asking for them in two calls ran
        the network twice per frame.
        """
        probabilities, logits, _ = self.run_with_map(batch, want_map=False)
        return probabilities, logits

    def run_with_map(
        self, batch: np.ndarray, want_map: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Probabilities, logits and (B, h, w) merge maps, from one run per image; ``None`` for an
        output the file does not have (or a map not wanted)."""
        names = self.output_names
        has_logits = "logits" in names
        wanted = [names[0]] + (["logits"] if has_logits else [])
        with_map = want_map and self.has_map
        wanted += [MAP_OUTPUT] if with_map else []
        runs = [self.session.run(wanted, {self.input_name: batch[i : i + 1]}) for i in range(len(batch))]
        probabilities = np.concatenate([run[0] for run in runs])
        logits = np.concatenate([run[1] for run in runs]) if has_logits else None
        maps = np.concatenate([run[-1] for run in runs]) if with_map else None
        return probabilities, logits, maps

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.run_outputs(preprocess(images, self.preprocessing).numpy())[0]
