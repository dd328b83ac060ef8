"""A model adapted twice: does the second fine-tune keep the station the first one adapted to?
(issue 26, "multi-station").

The ELPV demo model (station A) is fine-tuned to a lamp change (B: ``adaptation_shifts``' lighting
station), and that model again to a change of optics (C: blur and sensor noise at severity 3 on
the same parts, a new lens or a dirty one). Every step is scored on all three stations' test images
(60 each: A = the parts unshifted). A moved camera as C (``angle``) was tried first: it costs the
lamp-adapted model under a point, no epoch beat it on validation, and every second step handed it
back unchanged. The second step runs three ways:

- ``all``: the default, whole network, no replay;
- ``all+replay``: replays every station the model served — A's and B's reference samples, as a
  fine-tuned bundle now remembers the station it adapted to (``inspector.training.station_memory``);
- ``all+replay-first``: the same with B's bundle stripped of what it remembers of B — how a chained
  replay worked before (only the trained station, A).

    python -m benchmarks.adaptation_chain --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.adaptation_shifts import PLAIN, RUNS, _test_images, build_stations
from inspector.training.finetune import FINETUNE_RECIPE, finetune_model
from inspector.training.hooks import Hooks
from inspector.training.station_memory import ADDED_KEY
from inspector.training.workflows import evaluate_loaded
from models.bundle import load_bundle

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "adaptation_chain.json"
BASE = ROOT.parent / "inspector" / "demo_model"
SECOND = {"all": {}, "all+replay": {"replay": True}, "all+replay-first": {"replay": True}}


def _fine_tune(base: Path, station: Path, out: Path, seed: int, **options: bool) -> float:
    """One fine-tune with the wizard's default recipe and ``options``; the minutes it took."""
    recipe = replace(FINETUNE_RECIPE, trainable="all", seed=seed, **{**PLAIN, **options})
    tic = time.perf_counter()
    finetune_model(
        base, str(station), out, recipe=recipe, force=True, hooks=Hooks(log=lambda _m: None, progress=False)
    )
    return round((time.perf_counter() - tic) / 60, 2)


def _forget_added(bundle: Path, out: Path) -> Path:
    """``bundle`` as a fine-tune before multi-station memory left it: the trained station only."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(bundle, out)
    meta = json.loads((out / "model.json").read_text())
    meta["provenance"].pop(ADDED_KEY, None)
    (out / "model.json").write_text(json.dumps(meta, indent=2))
    return out


def _scores(bundle: Path, tests: dict) -> dict[str, float]:
    loaded = load_bundle(bundle)
    return {name: round(evaluate_loaded(loaded, images)["macro_f1"], 4) for name, images in tests.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--images", type=int, default=300, help="Each shifted station's size (60/20/20).")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    lamp = build_stations(BASE, "elpv", "lighting", args.images, RUNS / f"demo_model-lighting-{args.images}")
    optics = build_stations(BASE, "elpv", "optics", args.images, RUNS / f"demo_model-optics-{args.images}")
    channels = load_bundle(BASE).meta.preprocessing.channels
    tests = {
        "A": _test_images(lamp / "unshifted", channels),
        "B lamp": _test_images(lamp / "shifted", channels),
        "C optics": _test_images(optics / "shifted", channels),
    }
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    results["command"] = " ".join(["python -m benchmarks.adaptation_chain", *sys.argv[1:]])
    results.setdefault("base", _scores(BASE, tests))
    print(f"base: {results['base']}", flush=True)
    folder = RUNS / "chain"
    for seed in args.seeds:
        cell = results.setdefault(f"s{seed}", {})
        first = folder / f"s{seed}-B"
        if "B" not in cell or not first.is_dir():
            minutes = _fine_tune(BASE, lamp / "shifted", first, seed)
            cell["B"] = {**_scores(first, tests), "minutes": minutes}
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")
        print(f"seed {seed}, after B (all): {cell['B']}", flush=True)
        for name, options in SECOND.items():
            if name in cell:
                continue
            start = _forget_added(first, folder / f"s{seed}-B-first") if name.endswith("-first") else first
            out = folder / f"s{seed}-C-{name}"
            minutes = _fine_tune(start, optics / "shifted", out, seed, **options)
            cell[name] = {**_scores(out, tests), "minutes": minutes}
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=2) + "\n")
            print(f"seed {seed}, after C ({name}): {cell[name]}", flush=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
