"""What int8 costs in accuracy, per station (issue 25): test macro-F1 of a bundle in fp32 (ONNX
Runtime) and as each int8 graph (ONNX Runtime QDQ; OpenVINO/NNCF where installed), with the gate's
verdict (validation split) beside it. The gate decides what a line runs; the test split says what
that decision costs on parts neither the model nor the gate has seen.

    python -m benchmarks.int8_accuracy --cell NAME BUNDLE DATA [--cell ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "int8_accuracy.json"


def main() -> None:
    from inspector.line.backends import gated_int8, int8_path, openvino_int8_path
    from inspector.line.inference import InferenceEngine
    from inspector.line.int8 import _inputs, judge, open_station_for, run_predictor
    from inspector.training.metrics import classification_report
    from models.bundle import load_bundle
    from models.onnx_export import OnnxPredictor
    from models.openvino_backend import int8_unavailable

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", nargs=3, action="append", metavar=("NAME", "BUNDLE", "DATA"), required=True)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    backends = ["int8"] + ([] if int8_unavailable() else ["openvino-int8"])
    rows = []
    for name, bundle_path, data in args.cell:
        bundle = load_bundle(bundle_path)
        engine = InferenceEngine(bundle, "onnx", Path(tempfile.mkdtemp(prefix="int8-acc-")))
        station = open_station_for(bundle, data)
        inputs, labels = _inputs(bundle, station.split("test"), print)
        classes = bundle.meta.classes
        truth = np.array([classes.index(label) for label in labels])
        fp32 = run_predictor(engine.onnx, inputs)
        f1_fp32 = classification_report(truth, fp32[0].argmax(1), list(classes))["macro_f1"]
        row = {"cell": name, "bundle": bundle_path, "data": data, "test_images": len(labels),
               "test_macro_f1_fp32": round(f1_fp32, 4)}  # fmt: skip
        for backend in backends:
            _, gate, why = gated_int8(engine, backend, engine.onnx_path, engine.onnx, data, True, print)
            if gate is None:
                row[backend] = {"skipped": why}
                continue
            if backend == "int8":
                predictor = OnnxPredictor(int8_path(engine.onnx_path), bundle.meta.preprocessing)
            else:
                from models.openvino_backend import OpenVinoPredictor

                predictor = OpenVinoPredictor(openvino_int8_path(engine.onnx_path))
            int8 = run_predictor(predictor, inputs)
            on_test = judge(classes, engine.rules, labels, fp32, int8)
            row[backend] = {
                "gate_passed": gate.passed,
                "gate_val_macro_f1": [gate.macro_f1_fp32, gate.macro_f1_int8],
                "gate_val_agreement": gate.agreement,
                "test_macro_f1": on_test.macro_f1_int8,
                "test_agreement": on_test.agreement,
            }
        rows.append(row)
        print(json.dumps(row), flush=True)
    heads = " ".join(f"{b + ' F1 / agree / gate':>30}" for b in backends)
    print(f"\n{'cell':28} {'test F1 fp32':>12} {heads}")
    for row in rows:
        cells = []
        for backend in backends:
            item = row[backend]
            cells.append(
                f"{'skipped':>30}" if "skipped" in item else
                f"{item['test_macro_f1']:>9.3f} / {item['test_agreement']:6.1%} / "
                f"{'passed' if item['gate_passed'] else 'refused':>7}"
            )  # fmt: skip
        print(f"{row['cell']:28} {row['test_macro_f1_fp32']:12.3f} " + " ".join(cells))
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.json.write_text(json.dumps({"rows": rows, "when": when}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
