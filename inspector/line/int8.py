"""The int8 model a line may run, and the accuracy gate it must pass first (issue 25).

An int8 graph is built from the bundle's fp32 ONNX export, calibrated on a stratified sample of the
station's *training* images, and judged on its *validation* split against the fp32 graph: macro-F1
within :data:`MAX_F1_DROP` and the same verdict (OK / NG / UNSURE, the line's own rules) on at least
:data:`MIN_AGREEMENT` of the images. A model that fails runs fp32, and the one-line reason goes to
the run's summary and its ledger row.

Both files live in the ONNX cache beside the fp32 export, each with a ``.sha256`` stamp written
after it was complete; the gate's record (``<int8>.gate.json``, the bundle's card for this PC) names
the int8 file's hash, so a rebuilt int8 file is judged again and a corrupt one is rebuilt.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data.errors import DataError
from data.loading import load_pixels
from data.station import Sample, Station, load_station
from inspector.classification_report import classification_report
from inspector.errors import InspectorError
from inspector.line.verdicts import VerdictRules
from models.bundle import Bundle
from models.errors import ModelError
from models.files import atomic_write_text, read_json, sha256_file, write_stamp
from models.preprocess import Preprocessing, preprocess
from models.scoring import energy

MAX_F1_DROP = 0.005  # 0.5 point of macro-F1
MIN_AGREEMENT = 0.99  # same verdict on 99 % of the validation images
CALIBRATION_IMAGES = 300
# For scale beside the gate's figures: fp32's own verdicts under camera noise this small (uniform,
# the same on every channel, in gray levels of the 8-bit image). On the demo model it changes 3.9 %
# of the validation verdicts, its gated int8 graph 0.9 % (BENCHMARKS.md "Can the stem learn int8").
NOISE_GRAY_LEVELS = 0.5
Log = Callable[[str], None]


@dataclass(frozen=True)
class GateResult:
    """What the gate measured; ``reason`` is the one line a person reads."""

    passed: bool
    reason: str
    macro_f1_fp32: float
    macro_f1_int8: float
    agreement: float  # share of validation images with the same verdict
    images: int
    # Share of the same images whose fp32 verdict changes under NOISE_GRAY_LEVELS of noise: for scale,
    # not part of the rule (None where the model normalises each image by itself).
    noise_flips: float | None = None
    int8_sha256: str = ""
    data_fingerprint: str = ""
    calibration_images: int = 0
    measured_at: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def stratified(samples: Sequence[Sample], count: int, seed: int = 0) -> list[Sample]:
    """Up to ``count`` samples with every class in its share of ``samples`` (at least one each)."""
    by_class: dict[str, list[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    rng = random.Random(seed)
    total = len(samples)
    picked: list[Sample] = []
    for label in sorted(by_class):
        group = sorted(by_class[label], key=lambda s: str(s.path))
        rng.shuffle(group)
        picked += group[: max(1, round(count * len(group) / total))] if total else []
    return picked


def _inputs(bundle: Bundle, samples: Sequence[Sample], log: Log) -> tuple[np.ndarray, list[str]]:
    prep = bundle.meta.preprocessing
    loaded = load_pixels(samples, prep.channels, None, progress=False)
    if loaded.skipped:
        log(f"int8: skipped {len(loaded.skipped)} unreadable image(s); first: {loaded.skipped[0]}")
    if not loaded.images:
        raise InspectorError("int8: no readable images to calibrate or judge on")
    batches = [preprocess(loaded.images[i : i + 64], prep).numpy() for i in range(0, len(loaded.images), 64)]
    return np.concatenate(batches), loaded.labels


def calibration_inputs(bundle: Bundle, station: Station, count: int = CALIBRATION_IMAGES) -> np.ndarray:
    """A stratified sample of the station's training images, preprocessed as the line does."""
    return _inputs(bundle, stratified(station.split("train"), count), print)[0]


def noise_step(prep: Preprocessing) -> np.ndarray | None:
    """:data:`NOISE_GRAY_LEVELS` in the network's input units, per channel; None for per-image
    normalisation, where a gray level has no fixed size in those units."""
    if prep.normalize == "image":
        return None
    return (NOISE_GRAY_LEVELS / 255 / np.asarray(prep.std, np.float32)).reshape(1, -1, 1, 1)


def with_noise(inputs: np.ndarray, step: np.ndarray, seed: int = 0) -> np.ndarray:
    """``inputs`` plus uniform noise of ±``step``, the same on every channel, as a gray camera's."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1, 1, (len(inputs), 1, *inputs.shape[2:])).astype(np.float32)
    return inputs + noise * step


def _noisy_outputs(predictor, inputs: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fp32 on ``inputs`` with noise, a chunk at a time: no second copy of the whole split in memory."""
    chunks = [
        run_predictor(predictor, with_noise(inputs[i : i + 128], step, seed=i))
        for i in range(0, len(inputs), 128)
    ]
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


def _verdicts(rules: VerdictRules, outputs: tuple[np.ndarray, np.ndarray]) -> list[str]:
    """The line's OK / NG / UNSURE for each (probabilities, logits) row: what the gate compares."""
    probs, logits = outputs
    return [rules.decide(p, e).verdict for p, e in zip(probs, energy(logits), strict=True)]


def _agreement(first: list[str], second: list[str]) -> float:
    """Share of positions where two verdict lists say the same."""
    return float(np.mean([a == b for a, b in zip(first, second, strict=True)]))


def judge(
    classes: Sequence[str],
    rules: VerdictRules,
    labels: Sequence[str],
    fp32: tuple[np.ndarray, np.ndarray],
    int8: tuple[np.ndarray, np.ndarray],
    fp32_noisy: tuple[np.ndarray, np.ndarray] | None = None,
) -> GateResult:
    """The gate on (probabilities, logits) of both graphs for the same labelled images;
    ``fp32_noisy``, fp32 on the same images with a little noise, only puts the figures in scale."""
    index = {name: i for i, name in enumerate(classes)}
    truth = np.array([index[label] for label in labels])
    f1 = [
        classification_report(truth, probs.argmax(1), list(classes))["macro_f1"] for probs, _ in (fp32, int8)
    ]
    reference = _verdicts(rules, fp32)
    agreement = _agreement(reference, _verdicts(rules, int8))
    drop = f1[0] - f1[1]
    figures = (
        f"macro-F1 {f1[1]:.3f} vs fp32 {f1[0]:.3f}, same verdict on {agreement:.1%} "
        f"of {len(labels)} validation images"
    )
    noise_flips = None
    if fp32_noisy is not None:
        noise_flips = round(1 - _agreement(reference, _verdicts(rules, fp32_noisy)), 4)
    if drop > MAX_F1_DROP:
        reason = f"int8 refused: {figures} (macro-F1 may drop by {MAX_F1_DROP * 100:.1f} point at most)"
    elif agreement < MIN_AGREEMENT:
        reason = f"int8 refused: {figures} (at least {MIN_AGREEMENT:.0%} must agree)"
    else:
        reason = f"int8 passed the gate: {figures}"
    if noise_flips is not None:
        reason += (
            f"; for scale, {NOISE_GRAY_LEVELS:g} gray level of noise changes {noise_flips:.1%} "
            "of fp32's own verdicts"
        )
    passed = drop <= MAX_F1_DROP and agreement >= MIN_AGREEMENT
    return GateResult(
        passed, reason, round(f1[0], 4), round(f1[1], 4), round(agreement, 4), len(labels), noise_flips
    )


def run_predictor(predictor, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, logits) of an ONNX/OpenVINO predictor on preprocessed inputs."""
    probabilities, logits = predictor.run_outputs(inputs)
    if logits is None:
        logits = np.log(probabilities + 1e-12)
    return probabilities, logits


def gate_file(int8: Path) -> Path:
    return int8.with_name(int8.name + ".gate.json")


def read_gate(int8: Path) -> GateResult | None:
    """The recorded gate for exactly this int8 file (its hash), else None (judge it again)."""
    try:
        record = read_json(gate_file(int8))
        result = GateResult(**record)
        if result.int8_sha256 != sha256_file(int8):
            return None
        return result
    except (OSError, ValueError, TypeError):
        return None


def write_gate(int8: Path, result: GateResult) -> None:
    atomic_write_text(gate_file(int8), json.dumps(result.to_json(), indent=2) + "\n")


def open_station_for(bundle: Bundle, data: str | Station | None) -> Station:
    """The station to calibrate and gate on: ``data``, else the one the bundle was trained on."""
    from models.bundle import split_seed

    if isinstance(data, Station):
        return data
    source = data or bundle.meta.provenance.get("data")
    if not isinstance(source, str) or not source:
        raise InspectorError("int8 needs the station's images to calibrate and gate on (none recorded)")
    try:
        return load_station(source, split_seed(bundle))
    except DataError as exc:
        raise InspectorError(f"int8: station data {source!r}: {exc}") from None


def build_and_gate(
    bundle: Bundle,
    rules: VerdictRules,
    fp32_path: Path,
    int8_path: Path,
    station: Station,
    fp32_predictor,
    make_predictor: Callable[[Path], object],
    quantize: Callable[[Path, Path, np.ndarray], None] | None = None,
    log: Log = print,
) -> GateResult:
    """Quantize ``fp32_path`` into ``int8_path`` (stamped), run the gate, record it beside the file.

    ``quantize(fp32, target, calibration)`` defaults to :func:`models.quantize.quantize_onnx`; the
    tests hand in a broken one to see the gate refuse it.
    """
    from models.quantize import quantize_onnx

    log(f"int8: calibrating on up to {CALIBRATION_IMAGES} training images of {station.root}")
    calibration = _inputs(bundle, stratified(station.split("train"), CALIBRATION_IMAGES), log)[0]
    try:
        (quantize or (lambda src, dst, cal: quantize_onnx(src, dst, cal)))(fp32_path, int8_path, calibration)
        write_stamp(int8_path)
        int8_predictor = make_predictor(int8_path)
    except ModelError as exc:
        raise InspectorError(str(exc)) from None
    except OSError as exc:
        raise InspectorError(f"int8 cache {exc.filename or int8_path}: {exc.strerror or exc}") from None
    val = station.split("val")
    if not val:
        raise InspectorError("int8: the station has no validation images to gate on")
    inputs, labels = _inputs(bundle, val, log)
    unknown = sorted(set(labels) - set(bundle.meta.classes))
    if unknown:
        raise InspectorError(f"int8: the station has classes the model does not know: {', '.join(unknown)}")
    step = noise_step(bundle.meta.preprocessing)
    result = judge(
        bundle.meta.classes,
        rules,
        labels,
        run_predictor(fp32_predictor, inputs),
        run_predictor(int8_predictor, inputs),
        None if step is None else _noisy_outputs(fp32_predictor, inputs, step),
    )
    result = GateResult(
        **{
            **result.to_json(),
            "int8_sha256": sha256_file(int8_path),
            "data_fingerprint": _fingerprint(station),
            "calibration_images": len(calibration),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    try:
        write_gate(int8_path, result)
    except OSError as exc:
        raise InspectorError(f"int8 cache {exc.filename or int8_path}: {exc.strerror or exc}") from None
    log(result.reason)
    return result


def _fingerprint(station: Station) -> str:
    try:
        return station.fingerprint()
    except OSError:
        return ""
