# ruff: noqa: E501  (the model card is a Markdown template; its lines are the card's lines)
"""Copy a trained ELPV bundle into ``inspector/demo_model`` with its model card and eval report.

python -m benchmarks.package_demo_model benchmarks/runs/pretrained/elpv-hybrid-ltm-0.8-s0 elpv-hybrid.eval.json
python -m benchmarks.package_demo_model inspector/demo_model --add-reference
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from models.bundle import load_bundle

TARGET = Path(__file__).resolve().parents[1] / "inspector" / "demo_model"
MAX_WEIGHTS = 8 * 1024 * 1024


def calibration_note(thresholds: dict) -> str:
    error, unsure = thresholds["val_error_rate_confident"], thresholds["val_unsure_rate"]
    if error <= 0.02:
        return f"On validation {unsure:.0%} of parts go to UNSURE and {error:.1%} of the rest are wrong."
    return (
        f"The calibration target (at most 2% wrong among confident verdicts) was out of reach within the "
        f"25% UNSURE budget: with {unsure:.0%} of validation parts sent to UNSURE, {error:.0%} of the "
        "confident ones are still wrong. Treat its verdicts as a demo, not as a line-ready model."
    )


def train_command(meta: dict) -> str:
    """The ``inspector train`` call with the bundle's own recipe (what its provenance records)."""
    prov, merge = meta["provenance"], meta["merge"]
    weights = (prov.get("weights") or {}).get("source", "scratch")
    parts = [
        "inspector train elpv --out MODEL",
        f"--backbone {prov['backbone_preset']}",
        f"--pretrained {weights if weights != 'scratch' else 'none'}",
        f"--merge {merge['mode']}",
        f"--gmacs-ratio {merge['gmacs_ratio']}" if merge.get("gmacs_ratio") else "",
        f"--mask {merge['mask']}" if merge.get("mask") else "",
        f"--epochs {prov['epochs']}",
        f"--img-size {meta['preprocessing']['size']}",
        f"--seed {prov['seed']}",
    ]
    return " ".join(p for p in parts if p)


def card(meta: dict, report: dict, weights_bytes: int) -> str:
    prov = meta["provenance"]
    weights = prov.get("weights") or {"source": "scratch"}
    start = (
        "random initial weights (trained from scratch)"
        if weights["source"] == "scratch"
        else f"`{weights['source']}` (sha256 `{weights.get('sha256', '?')}`), normalisation mean "
        f"{weights.get('mean')} / std {weights.get('std')}; gray cells are replicated to 3 channels"
    )
    moved = ", ".join(f"{row['grid']} {100 * row['moved']:.0f} %" for row in prov.get("merge_movement") or [])
    per_class = "\n".join(
        f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        for name, row in report["per_class"].items()
    )
    channels = meta["preprocessing"]["channels"]
    return f"""# Demo model card

**What**: the model LTM Inspector uses when none is given: the `{prov["backbone_preset"]}` preset
(`{meta["backbone"]["name"]}` with {meta["backbone"]["overrides"]}) at {meta["preprocessing"]["size"]} px,
{channels} channel{"s" if channels != 1 else ""}, learnable token merging ({meta["merge"].get("mask", "v1")} mask) at
gmacs_ratio {meta["merge"]["gmacs_ratio"]} (schedule {meta["merge"]["schedule"]}). Starting weights: {start}.
Classes {meta["classes"]}, normal class `{meta["normal_class"]}`. Weights: {weights_bytes / 1e6:.2f} MB.
Token mass each merge moved away from plain pooling on validation images: {moved or "–"}.

**Data**: ELPV solar-cell electroluminescence images (`pip install elpv-dataset`, CC BY-NC-SA 4.0;
the images are not shipped here). Labels: {prov["label_note"]}. Seeded stratified split (seed
{prov["seed"]}): {prov["train_images"]} train / {prov["val_images"]} val images; data fingerprint
`{prov["data_fingerprint"]}`.

**How it was trained**: `python -m benchmarks.pretrained_suite --datasets elpv --methods hybrid-ltm@0.8
--seeds {prov["seed"]}`, which calls the same `train_model` as

```bash
{train_command(meta)}
```

Recipe: {prov["recipe"]}.
Training took {prov["train_seconds"] / 60:.0f} min on 2 CPU cores; best validation epoch {prov["best_epoch"] + 1}
(val macro-F1 {prov["val"]["macro_f1"]:.3f}).

**How it scores** on the held-out test split (`inspector eval MODEL elpv --json eval.json`, full
report in `eval.json` beside this card): accuracy **{report["accuracy"]:.3f}**, macro-F1
**{report["macro_f1"]:.3f}** on {report["n"]} images; {report["gmacs"]:.3f} GMACs, {report["params"]:,} parameters,
PyTorch batch-1 latency p50 {report["latency_ms"]["p50"]:.1f} ms on the training machine (beside other jobs).

| class | precision | recall | f1 | support |
|---|---|---|---|---|
{per_class}

**Verdict thresholds** (calibrated on validation): {meta["thresholds"]}.

**Limits**: {calibration_note(meta["thresholds"])} Trained on 1.4 k images at {meta["preprocessing"]["size"]} px;
the ambiguous ⅓ cells were never seen, so expect them to land on either side (the UNSURE band
exists for them). A station with another camera or lamp should be re-calibrated (Fine-tune screen,
no labels) or adapted with `inspector finetune` before it is trusted.
"""


def add_reference(folder: Path) -> None:
    """Give a bundle trained before reference samples were kept (issue 26) the one ``inspector
    train`` would have drawn: paths and hashes into the ``elpv`` package, never its pixels (the
    dataset's licence forbids shipping them), on the same seeded split the model was trained on."""
    from data.station import load_station
    from inspector.training import reference_sample

    path = folder / "model.json"
    meta = json.loads(path.read_text())
    prov = meta["provenance"]
    station = load_station(prov["data"], prov["split_seed"])
    if station.fingerprint() != prov["data_fingerprint"]:
        raise SystemExit(f"{prov['data']} is not the station {folder} was trained on (fingerprint differs)")
    prov["reference_sample"] = reference_sample.draw(station, prov["data"], prov["seed"])
    prov["reference_sample"]["root"] = ""  # a named dataset is found where it is installed
    path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{folder}: reference sample of {len(prov['reference_sample']['images'])} images added")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("eval_json", type=Path, nargs="?")
    parser.add_argument(
        "--add-reference", action="store_true", help="Only add a reference sample to BUNDLE's model.json."
    )
    args = parser.parse_args()
    if args.add_reference:
        add_reference(args.bundle)
        return
    if args.eval_json is None:
        parser.error("eval_json is required to package a bundle")
    load_bundle(args.bundle)
    weights = (args.bundle / "model.safetensors").stat().st_size
    if weights > MAX_WEIGHTS:
        raise SystemExit(f"weights are {weights / 1e6:.1f} MB, over the 8 MB limit for the shipped model")
    report = json.loads(args.eval_json.read_text())
    meta = json.loads((args.bundle / "model.json").read_text())
    shutil.rmtree(TARGET, ignore_errors=True)
    TARGET.mkdir(parents=True)
    for name in ("model.json", "model.safetensors"):
        shutil.copyfile(args.bundle / name, TARGET / name)
    if "reference_sample" not in meta["provenance"]:
        add_reference(TARGET)
    (TARGET / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    (TARGET / "MODEL_CARD.md").write_text(card(meta, report, weights))
    print(f"packaged {args.bundle} into {TARGET}")


if __name__ == "__main__":
    main()
