"""Can the CNN stem be taught to survive int8? (issue 25): grid-snapped weights, quantization-aware
tuning, and which activation's 256 levels move the verdicts.

The int8 gate refuses a fully quantized default model because the EfficientNet stem's first stages
flip ~5 % of the verdicts (BENCHMARKS.md "int8 on the line"), so today they stay fp32 and int8 buys
0.77x instead of 0.60x. Three measurements, all on the bundle's validation split with the gate's
own rule (macro-F1 within 0.5 point, the same OK / NG / UNSURE verdict on >= 99 %):

1. *snapped*: every stem convolution's weights rounded onto the grid ONNX Runtime quantizes them to
   (per output channel, symmetric, absmax / 127 - exact after BatchNorm folding, which scales each
   output channel), so int8 and fp32 differ by activation rounding alone;
2. *tuned*: the stem simulated in int8 in PyTorch (fake-quantized weights on that grid, activations
   on the calibration images' MinMax ranges, where ORT puts its Q/DQ pairs) and tuned to match the
   original model's outputs, both through the int8 simulation and through the snapped fp32 weights,
   then snapped;
3. *where the flips come from*, simulated in PyTorch against the fp32 network: the weights' rounding,
   the activations' with and without the input image, each activation alone, and - for scale - what
   input noise of half a gray level flips with no rounding at all.

Each model is quantized by the product's own ``models.quantize.quantize_onnx`` with several fp32
keep sets. Research only: nothing here is used by the line.

    python -m benchmarks.int8_qat --model inspector/demo_model --json benchmarks/results/int8_qat.json
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch import nn

from inspector.line.int8 import noise_step
from inspector.line.verdicts import VerdictRules
from models.bundle import Bundle
from models.scoring import energy

STEM_CONV = ("scope:proj.cnn.conv_stem", "scope:proj.cnn.bn1")
STEM_EARLY = ("scope:cnn.blocks.0.", "scope:cnn.blocks.1.")
PARTS = ("original", "flips", "snapped", "tuned", "pixels")
TO_PIXELS = "scope:conv_stem.to_pixels"  # the pixel stem's own elementwise ops: fp32, on the fp32 input
KEEP_SETS = {
    "all int8": ("Softmax", "merge"),
    "stem conv fp32": ("Softmax", "merge", *STEM_CONV),
    "stem conv + stages 0-1 fp32": ("Softmax", "merge", *STEM_CONV, *STEM_EARLY),
    "early stem fp32 (default)": ("Softmax", "merge", "early-stem"),
}


class ActivationGrid(nn.Module):
    """Per-tensor asymmetric uint8 rounding with MinMax ranges, as ORT's static QDQ calibrates."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.low = torch.tensor(0.0)  # ORT's range always holds 0
        self.high = torch.tensor(0.0)
        self.mode = "off"  # off | observe | quant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "observe":
            self.low = torch.minimum(self.low, x.detach().min())
            self.high = torch.maximum(self.high, x.detach().max())
        elif self.mode == "quant":
            scale = float((self.high - self.low).clamp_min(1e-8)) / 255
            return torch.fake_quantize_per_tensor_affine(x, scale, round(-float(self.low) / scale), 0, 255)
        return x


class WeightGrid(nn.Module):
    """ORT's int8 weight grid: per output channel, symmetric, scale = absmax / 127."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        scale = weight.detach().abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(weight, scale, zero, 0, -127, 127)


class Simulated:
    """The hybrid's stem (and its 1x1 projection) with int8 rounding hooked in."""

    def __init__(self, net: nn.Module, weights: bool = True) -> None:
        from models.backbones import cnn_of

        self.net = net
        cnn = cnn_of(net.backbone)
        if cnn is None:
            raise SystemExit("int8_qat: the model has no CNN stem")
        projection = net.backbone.patch_embed.proj.proj
        self.convs = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)] + [projection]
        self.grids: list[ActivationGrid] = []
        grid = self._grid("input")
        cnn.conv_stem.register_forward_pre_hook(lambda _m, args, g=grid: (g(args[0]),))
        for name, module in cnn.named_modules():
            kind = type(module).__name__
            if kind == "BatchNormAct2d" or (kind == "InvertedResidual" and module.has_skip):
                grid = self._grid(name)
                module.register_forward_hook(lambda _m, _i, out, g=grid: g(out))
        grid = self._grid("projection")
        projection.register_forward_hook(lambda _m, _i, out, g=grid: g(out))
        for conv in self.convs if weights else []:
            parametrize.register_parametrization(conv, "weight", WeightGrid())

    def _grid(self, name: str) -> ActivationGrid:
        self.grids.append(ActivationGrid(name))
        return self.grids[-1]

    def mode(self, mode: str, only: ActivationGrid | None = None) -> None:
        for grid in self.grids:
            grid.mode = mode if only is None or grid is only else "off"

    def observe(self, calibration: np.ndarray) -> None:
        self.mode("observe")
        with torch.no_grad():
            for i in range(0, len(calibration), 32):
                self.net(torch.from_numpy(calibration[i : i + 32]))
        self.mode("off")

    def snap(self) -> nn.Module:
        """The network with its weights on the int8 grid and no hooks left to export."""
        self.mode("off")
        for conv in self.convs:
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
        clean = copy.deepcopy(self.net)
        for module in clean.modules():
            module._forward_hooks.clear()
            module._forward_pre_hooks.clear()
        return clean


class ToPixels(nn.Module):
    """Normalised input back to 8-bit pixel values (exact to float rounding), padded with the mean
    the way the normalised image was padded with zero ("same" padding of a stride-2 3x3 conv)."""

    def __init__(self, mean: list[float], std: list[float], pad: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) * 255)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x * self.std, self.pad) + self.mean


class PixelStem(nn.Module):
    """The first convolution on 8-bit pixel values, the normalisation folded into its weights: ORT
    then quantizes its input at scale 1, exactly, instead of re-gridding the normalised image (when
    the calibration images hold a 255 somewhere: MinMax ranges always hold 0)."""

    def __init__(self, conv: nn.Conv2d, mean: list[float], std: list[float]) -> None:
        super().__init__()
        if tuple(conv.padding) != (0, 0) or conv.groups != 1 or tuple(conv.dilation) != (1, 1):
            # Only timm's Conv2dSame (the tf_ EfficientNets' stem) pads inside forward as assumed here.
            raise SystemExit(f"int8_qat: pixel stem needs a 'same'-padded plain stem conv, not {conv}")
        size, stride = conv.kernel_size[0], conv.stride[0]
        total = max(size - stride, 0)  # timm's "same" padding for an input divisible by the stride
        self.to_pixels = ToPixels(mean, std, (total // 2, total - total // 2, total // 2, total - total // 2))
        scale = torch.tensor(std).view(1, -1, 1, 1) * 255
        shift = torch.tensor(mean).view(1, -1, 1, 1) * 255
        weight = conv.weight.detach() / scale
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, size, stride, 0, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(weight)
            bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels)
            self.conv.bias.copy_(bias - (weight * shift).sum(dim=(1, 2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.to_pixels(x))


def pixel_stem(net: nn.Module, mean: list[float], std: list[float]) -> nn.Module:
    """A copy of ``net`` whose first convolution works on pixel values (see :class:`PixelStem`)."""
    from models.backbones import cnn_of

    clone = copy.deepcopy(net).eval()
    cnn = cnn_of(clone.backbone)
    cnn.conv_stem = PixelStem(cnn.conv_stem, mean, std)
    return clone


def tune(
    sim: Simulated,
    teacher: nn.Module,
    images: np.ndarray,
    epochs: float,
    lr: float,
    log: Callable[[str], None],
) -> None:
    """Match the teacher's outputs through the int8 simulation and through the snapped fp32 net."""
    generator = torch.Generator().manual_seed(0)
    batch = 32
    steps = max(1, int(epochs * len(images) / batch))
    optimiser = torch.optim.AdamW(sim.net.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    pool = torch.from_numpy(images)
    tic = time.perf_counter()
    for step in range(steps):
        x = pool[torch.randint(0, len(pool), (batch,), generator=generator)]
        for dim in (2, 3):
            if torch.rand(1, generator=generator) < 0.5:
                x = x.flip(dim)
        with torch.no_grad():
            target = F.log_softmax(teacher(x), 1)
        loss = torch.zeros(())
        for mode in ("quant", "off"):
            sim.mode(mode)
            out = F.log_softmax(sim.net(x), 1)
            loss = loss + F.kl_div(out, target, log_target=True, reduction="batchmean")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 20 == 0 or step == steps - 1:
            log(f"  tune step {step + 1}/{steps}: loss {loss.item():.5f} ({time.perf_counter() - tic:.0f}s)")
    sim.mode("off")


def main() -> None:
    from inspector.line.bench import _ort_call
    from inspector.line.inference import InferenceEngine
    from inspector.line.int8 import CALIBRATION_IMAGES, _inputs, judge, open_station_for, stratified
    from models.bundle import load_bundle
    from models.latency import interleaved_rounds, summarise
    from models.onnx_export import OnnxPredictor
    from models.quantize import quantize_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("inspector/demo_model"))
    parser.add_argument("--data", default=None, help="Station (default: the one the bundle was trained on).")
    parser.add_argument("--epochs", type=float, default=1.5)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bundle = load_bundle(args.model)
    station = open_station_for(bundle, args.data)
    calibration = _inputs(bundle, stratified(station.split("train"), CALIBRATION_IMAGES), print)[0]
    splits = {name: _inputs(bundle, station.split(name), print) for name in ("val", "test")}
    scratch = Path(tempfile.mkdtemp(prefix="int8-qat-"))
    prep = bundle.meta.preprocessing
    sample = (
        np.random.default_rng(0).standard_normal((1, prep.channels, prep.size, prep.size)).astype(np.float32)
    )
    rows, calls = [], {}

    def measure(name: str, net: nn.Module, extra: tuple[str, ...] = ()) -> None:
        engine = InferenceEngine(Bundle(net.eval(), bundle.meta, None), "onnx", scratch / name)
        fp32 = {split: engine.onnx.run_outputs(x) for split, (x, _) in splits.items()}
        calls[f"{name} fp32"] = _ort_call(engine.onnx_path, args.threads, sample)
        for keep_name, keep in KEEP_SETS.items():
            target = scratch / name / f"{keep_name.split()[0]}-{len(keep)}.int8.onnx"
            quantize_onnx(engine.onnx_path, target, calibration, keep_fp32=keep + extra)
            predictor = OnnxPredictor(target, prep)
            row = {"model": name, "keep_fp32": keep_name}
            for split, (x, labels) in splits.items():
                gate = judge(bundle.meta.classes, engine.rules, labels, fp32[split], predictor.run_outputs(x))
                row[split] = {"macro_f1_fp32": gate.macro_f1_fp32, "macro_f1_int8": gate.macro_f1_int8,
                              "agreement": gate.agreement, "gate": gate.passed}  # fmt: skip
            rows.append(row)
            calls[f"{name} · {keep_name}"] = _ort_call(target, args.threads, sample)
            print(f"{name:9} {keep_name:28} val {row['val']} test {row['test']}", flush=True)

    parts = set(args.parts)
    if "original" in parts:
        measure("original", bundle.net)
    sensitivity, tune_seconds = [], 0.0
    if "flips" in parts:
        sensitivity = where_flips_come_from(
            bundle.net, calibration, splits["val"][0], engine_rules(bundle), noise_step(prep)
        )
    if parts & {"snapped", "pixels"}:
        snapped = Simulated(copy.deepcopy(bundle.net).eval()).snap()
    if "snapped" in parts:
        measure("snapped", snapped)
    if "tuned" in parts:
        tuned = Simulated(copy.deepcopy(bundle.net).eval())
        tuned.observe(calibration)
        train_images = _inputs(bundle, station.split("train"), print)[0]
        tic = time.perf_counter()
        tune(tuned, copy.deepcopy(bundle.net).eval(), train_images, args.epochs, args.lr, print)
        tune_seconds = time.perf_counter() - tic
        measure("tuned", tuned.snap())
    if "pixels" in parts and prep.normalize != "image":
        measure("pixels", pixel_stem(bundle.net, prep.mean, prep.std), (TO_PIXELS,))
        measure("pixels+snapped", pixel_stem(snapped, prep.mean, prep.std), (TO_PIXELS,))
    samples = interleaved_rounds(calls, args.rounds, args.runs, warmup=5)
    stats = {name: summarise(values) for name, values in samples.items()}
    for row in rows:
        key = f"{row['model']} · {row['keep_fp32']}"
        row["p50_ms"] = round(stats[key].p50_ms, 3)
        row["p50_vs_fp32"] = round(stats[key].p50_ms / stats[f"{row['model']} fp32"].p50_ms, 3)
    result = {
        "model": str(args.model),
        "data": args.data or bundle.meta.provenance.get("data"),
        "threads": args.threads,
        "tune": {"epochs": args.epochs, "lr": args.lr, "seconds": round(tune_seconds, 1)},
        "rows": rows,
        "flips_simulated": sensitivity,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for row in rows:
        print(
            f"{row['model']:9} {row['keep_fp32']:28} val F1 {row['val']['macro_f1_fp32']:.3f}/"
            f"{row['val']['macro_f1_int8']:.3f} agree {row['val']['agreement']:.3f} "
            f"test agree {row['test']['agreement']:.3f} p50 {row['p50_vs_fp32']:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def engine_rules(bundle: Bundle) -> VerdictRules:
    """The line's OK / NG / UNSURE rule for the bundle's own thresholds, as the gate applies it."""
    return VerdictRules.from_bundle(
        bundle.meta.classes, bundle.meta.normal_class, dict(bundle.meta.thresholds)
    )


def where_flips_come_from(
    net: nn.Module, calibration: np.ndarray, inputs: np.ndarray, rules: VerdictRules, noise: np.ndarray | None
) -> list[dict]:
    """The share of validation verdicts that each kind of rounding flips against the fp32 network,
    simulated in PyTorch: the weights, the activations with and without the input image, each
    activation alone (weights on the grid, against the snapped network); first, for scale, input
    noise of half a gray level (``noise``: per channel, in normalised units) with no rounding at all."""

    def verdicts(model: nn.Module, images: np.ndarray) -> list[str]:
        with torch.no_grad():
            logits = torch.cat(
                [model(torch.from_numpy(images[i : i + 64])) for i in range(0, len(images), 64)]
            )
        probs = torch.softmax(logits, 1).numpy()
        return [rules.decide(p, e).verdict for p, e in zip(probs, energy(logits.numpy()), strict=True)]

    def row(name: str, reference: list[str], model: nn.Module, images: np.ndarray = inputs, **extra) -> None:
        flips = float(np.mean([a != b for a, b in zip(reference, verdicts(model, images), strict=True)]))
        rows.append({"rounded": name, "flipped": round(flips, 4), **extra})
        print(f"  {name:48} flips {flips:.1%}", flush=True)

    rows: list[dict] = []
    fp32 = verdicts(net, inputs)
    if noise is not None:  # the same noise on every channel (a gray camera's), then each its own
        rng = np.random.default_rng(0)
        gray = rng.uniform(-1, 1, (len(inputs), 1, *inputs.shape[2:])).astype(np.float32)
        row("nothing; +-1/2 gray level of noise, same on each channel", fp32, net, inputs + gray * noise)
        colour = rng.uniform(-1, 1, inputs.shape).astype(np.float32)
        row("nothing; +-1/2 gray level of noise per channel", fp32, net, inputs + colour * noise)
    for weights in (False, True):
        sim = Simulated(copy.deepcopy(net).eval(), weights=weights)
        sim.observe(calibration)
        prefix = "weights + " if weights else ""
        if weights:
            row("weights", fp32, sim.net)
        sim.mode("quant")
        row(f"{prefix}activations", fp32, sim.net)
        sim.grids[0].mode = "off"
        row(f"{prefix}activations except the input image", fp32, sim.net)
        if not weights:
            sim.mode("quant", only=sim.grids[0])
            row("the input image alone", fp32, sim.net)
    sim.mode("off")
    snapped = verdicts(sim.net, inputs)
    for grid in sim.grids:
        sim.mode("quant", only=grid)
        row(
            f"{grid.name} alone (vs snapped)",
            snapped,
            sim.net,
            range=[round(float(grid.low), 3), round(float(grid.high), 3)],
        )
    sim.mode("off")
    return rows


if __name__ == "__main__":
    main()
