"""Live-line speed: the demo LTM model against its unmerged twin, logging and archiving on.

Two measurements per model, interleaved over rounds so both see the same machine load:

- **sustained**: the simulated ELPV station unpaced, the queue in ``block`` mode so every frame
  is judged — the most parts per second the whole pipeline (capture, inference, archive, ledger)
  keeps up with;
- **paced**: the station at ``--fps`` (default 25) with the line's default drop-oldest queue —
  frame-to-verdict p50/p95/p99, drops and overruns against the 1/fps cycle budget.

The unmerged twin is the same network and weights with every merge switched off, so the ratio
is what merging buys on this machine.

    python -m benchmarks.line_speed [--frames 600] [--fps 25] [--rounds 2]

``--model BUNDLE --data STATION`` measures another model on its own station's test split (issue 24:
a magnetic_tile model at its letterboxed 320 px) and writes ``line_speed_<bundle name>.json``.

``--finetune`` measures instead what a fine-tune started from the wizard costs the line on the
same PC (the demo model at ``--fps``, logging and archiving on), with the app's own code path:
``inspector.jobs.finetune.run_finetune`` in a
:class:`inspector.jobs.runner.BackgroundJob` that watches the line's
overruns. Rows: the line alone; the line with that fine-tune beside it; the line with the same
fine-tune in a thread of the line's own process (how the wizard trained before); and the training
time alone, so the table also says how much longer training takes beside a line.

    python -m benchmarks.line_speed --finetune [--frames 300] [--fps 25] [--budget-ms 50] [--epochs 2]

``--shadow`` measures what shadow mode costs the line (issue 16): the demo model deployed at
``--fps``, logging and archiving on, with and without its unmerged twin judging every frame in
shadow (:mod:`inspector.line.shadow`: own thread, queue of 2, shed first), interleaved over rounds;
frame→verdict percentiles over every frame from the ledger, overruns against ``--budget-ms``, and
the shadow's judged / shed counts.

    python -m benchmarks.line_speed --shadow [--frames 300] [--fps 25] [--budget-ms 50] [--rounds 2]

``--live`` measures the line as the app's Live screen runs it, the merge-map overlay on (a map for
every frame): the demo model on PyTorch (what the screen ran before the ONNX graph gave the map)
against the same model under ``--backend auto`` (what it runs now, as ``inspector run`` does),
interleaved over rounds, sustained and paced as above; ``line_speed_live.json``.

    python -m benchmarks.line_speed --live [--frames 600] [--fps 25] [--rounds 3]

``--backends`` runs the demo line (overlay off) under each runtime named, int8 ones behind their
accuracy gate on ELPV (refused: the line runs fp32, and the row says so); ``line_speed_backends.json``.
With ``--model/--data``, that bundle on its station (``line_speed_backends_<bundle name>.json``).

    python -m benchmarks.line_speed --backends onnx int8 openvino openvino-int8 [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.line_beside import finetune_main, shadow_main
from benchmarks.line_runs import (
    BACKENDS_RESULTS,
    BUDGET_MS,
    LIVE_RESULTS,
    RESULTS,
    engines,
    interleaved_lines,
    line_summary,
    machine,
    measure,
)
from data.elpv import load_elpv
from data.station import load_station
from inspector.line.demo import demo_model_path
from inspector.line.inference import InferenceEngine
from inspector.line.pipeline import default_inference_threads
from models.bundle import load_bundle
from models.flops import count_gmacs


def live_main(args: argparse.Namespace) -> None:
    """The Live screen's line (overlay on) on PyTorch, as before, and on ``auto``, as now."""
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "Live on torch (before)": InferenceEngine(load_bundle(demo_model_path()), "torch"),
            "Live on auto (now)": InferenceEngine(load_bundle(demo_model_path()), "auto", Path(tmp) / "onnx"),
        }
        load_before = os.getloadavg()
        runs = interleaved_lines(models, load_elpv(0), args, Path(tmp), track_maps=True)
    summary = line_summary(models, runs)
    before, now = summary.values()
    ratios = {
        "sustained_fps": round(now["sustained"]["fps"] / before["sustained"]["fps"], 3),
        "paced_p95": round(now["paced"]["p95_ms"] / before["paced"]["p95_ms"], 3),
        "sustained_fps_per_round": [
            round(n["fps"] / b["fps"], 3)
            for b, n in zip(*(modes["sustained"] for modes in runs.values()), strict=True)
        ],
    }
    report = {
        "command": f"python -m benchmarks.line_speed --live --frames {args.frames} --fps {args.fps:g} "
        f"--rounds {args.rounds}",
        "machine": machine(load_before),
        "inference_threads": default_inference_threads(),
        "summary": summary,
        "ratios_now_over_before": ratios,
        "runs": runs,
    }
    LIVE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    LIVE_RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'Live line, overlay on':24s} {'backend':>7s} {'sust. fps':>9s} {'paced p50':>9s} {'p95':>7s}")
    for name, item in summary.items():
        s, p = item["sustained"], item["paced"]
        print(f"{name:24s} {item['backend']:>7s} {s['fps']:9.1f} {p['p50_ms']:9.1f} {p['p95_ms']:7.1f}")
    print(f"now / before: sustained fps x{ratios['sustained_fps']}, paced p95 x{ratios['paced_p95']}")
    print(f"wrote {LIVE_RESULTS}")


def backends_main(args: argparse.Namespace) -> None:
    """The line (overlay off) under each asked-for backend; int8 ones only where gated. The demo
    model on ELPV, or ``--model`` on its ``--data`` station (gated on that station)."""
    bundle_path, data = args.model or demo_model_path(), args.data or "elpv"
    station = load_elpv(0) if args.data is None else load_station(args.data, 0)
    results = (
        BACKENDS_RESULTS
        if args.model is None
        else BACKENDS_RESULTS.with_name(f"line_speed_backends_{args.model.name}.json")
    )
    with tempfile.TemporaryDirectory() as tmp:
        models = {}
        for backend in args.backends:
            bundle = load_bundle(bundle_path)
            engine = InferenceEngine(bundle, backend, Path(tmp) / "onnx", data=data, log=print)
            models[backend if engine.backend == backend else f"{backend} (ran {engine.backend})"] = engine
            if engine.fallback:
                print(f"{backend}: {engine.fallback}", flush=True)
        load_before = os.getloadavg()
        runs = interleaved_lines(models, station, args, Path(tmp))
    summary = line_summary(models, runs)
    first = next(iter(summary.values()))
    ratios = {
        name: {
            "sustained_fps": round(item["sustained"]["fps"] / first["sustained"]["fps"], 3),
            "paced_p95": round(item["paced"]["p95_ms"] / first["paced"]["p95_ms"], 3),
        }
        for name, item in summary.items()
    }
    report = {
        "command": f"python -m benchmarks.line_speed --backends {' '.join(args.backends)} "
        f"--frames {args.frames} --fps {args.fps:g} --rounds {args.rounds}"
        + (f" --model {args.model} --data {args.data}" if args.model else ""),
        "machine": machine(load_before),
        "inference_threads": default_inference_threads(),
        "gates": {name: e.gate.to_json() for name, e in models.items() if e.gate is not None},
        "summary": summary,
        "ratios_to_first": ratios,
        "runs": runs,
    }
    results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'line, overlay off':28s} {'sust. fps':>9s} {'paced p50':>9s} {'p95':>7s} {'x fps':>6s}")
    for name, item in summary.items():
        s, p = item["sustained"], item["paced"]
        print(
            f"{name:28s} {s['fps']:9.1f} {p['p50_ms']:9.1f} {p['p95_ms']:7.1f} "
            f"{ratios[name]['sustained_fps']:6.2f}"
        )
    print(f"wrote {results}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--finetune", action="store_true", help="The line beside a wizard fine-tune.")
    parser.add_argument(
        "--shadow", action="store_true", help="The line with and without a shadow candidate (issue 16)."
    )
    parser.add_argument(
        "--live", action="store_true", help="The Live screen's line (overlay on): PyTorch before, auto now."
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        help="The demo line under each backend (torch onnx int8 openvino openvino-int8), int8 gated.",
    )
    parser.add_argument("--epochs", type=int, default=2, help="--finetune: epochs of the fine-tune.")
    parser.add_argument(
        "--budget-ms", type=float, default=BUDGET_MS, help="--finetune / --shadow: the line's cycle budget."
    )
    parser.add_argument(
        "--train-per-class", type=int, default=48, help="--finetune: training images per class."
    )
    parser.add_argument("--model", type=Path, help="A bundle other than the demo model (with --data).")
    parser.add_argument("--data", help="The station --model is judged on (its test split is replayed).")
    args = parser.parse_args()
    if args.finetune:
        finetune_main(args)
        return
    if args.shadow:
        shadow_main(args)
        return
    if args.live:
        live_main(args)
        return
    if (args.model is None) != (args.data is None):
        parser.error("--model and --data go together")
    if args.backends:
        backends_main(args)
        return
    station = load_elpv(0) if args.data is None else load_station(args.data, 0)
    models = engines(args.model)
    results = RESULTS if args.model is None else RESULTS.with_name(f"line_speed_{args.model.name}.json")
    gmacs = {
        name: count_gmacs(e.bundle.net, e.meta.backbone.img_size, e.meta.backbone.in_chans)
        for name, e in models.items()
    }
    runs: dict[str, dict[str, list[dict]]] = {name: {"sustained": [], "paced": []} for name in models}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for name, engine in models.items():
                for mode, fps in (("sustained", None), ("paced", args.fps)):
                    result = measure(
                        engine,
                        station,
                        Path(tmp) / f"{round_index}-{len(runs[name][mode])}-{mode}-{name[:3]}",
                        args.frames,
                        fps,
                    )
                    runs[name][mode].append(result)
                    print(
                        f"round {round_index + 1} {name:14s} {mode:9s} fps {result['fps']:6.1f}  "
                        f"p95 {result['p95_ms']:6.1f} ms  drops {result['dropped']}  "
                        f"overruns {result['overruns']}",
                        flush=True,
                    )
    summary = {}
    for name, modes in runs.items():
        best = max(modes["sustained"], key=lambda r: r["fps"])
        paced = sorted(modes["paced"], key=lambda r: r["p95_ms"])[len(modes["paced"]) // 2]
        summary[name] = {"gmacs": round(gmacs[name], 4), "sustained": best, "paced": paced}
    ltm, twin = summary["LTM (demo)"], summary["unmerged twin"]
    ratios = {
        "sustained_fps": round(ltm["sustained"]["fps"] / twin["sustained"]["fps"], 3),
        "paced_p95": round(ltm["paced"]["p95_ms"] / twin["paced"]["p95_ms"], 3),
    }
    report = {
        "command": "python -m benchmarks.line_speed "
        f"--frames {args.frames} --fps {args.fps:g} --rounds {args.rounds}"
        + (f" --model {args.model} --data {args.data}" if args.model else ""),
        "machine": machine(),
        "inference_threads": default_inference_threads(),
        "summary": summary,
        "ratios_ltm_over_unmerged": ratios,
        "runs": runs,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{'model':14s} {'GMACs':>6s} {'sust. fps':>9s} {'paced p50':>9s} {'p95':>7s} {'p99':>7s} "
        f"{'drops':>5s} {'overruns':>8s}"
    )
    for name, item in summary.items():
        s, p = item["sustained"], item["paced"]
        print(
            f"{name:14s} {item['gmacs']:6.3f} {s['fps']:9.1f} {p['p50_ms']:9.1f} {p['p95_ms']:7.1f} "
            f"{p['p99_ms']:7.1f} {p['dropped']:5d} {p['overruns']:8d}"
        )
    print(f"LTM / unmerged: sustained fps x{ratios['sustained_fps']}, paced p95 x{ratios['paced_p95']}")
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
