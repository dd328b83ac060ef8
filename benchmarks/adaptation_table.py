"""The per-method table of an adaptation study (``benchmarks.adaptation_shifts`` results) as Markdown:
one row per method, one column per shift; seeds pooled as mean ± std.

    python -m benchmarks.adaptation_table benchmarks/results/adaptation_keep.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def _method(key: str) -> tuple[str, int]:
    """``recalibrate+all+replay@10/s2`` -> (``all+replay``, 2)."""
    name, _, seed = key.partition("/s")
    name = name.split("@")[0].removeprefix("recalibrate+")
    return name, int(seed or 0)


def _spread(values: list[float], scale: float = 1.0, unit: str = "") -> str:
    if not values:
        return "–"
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:+.0f}{unit}" if unit == " %" else f"{mean:+.3f}"
    std = statistics.stdev(values) * scale
    return f"{mean:+.0f} ± {std:.0f}{unit}" if unit == " %" else f"{mean:+.3f} ± {std:.3f}"


def cell(rows: list[dict], base: dict) -> str:
    """Recovered share, the old station's change (the benchmark's own old images, and the fine-tune's
    check on the base's reference sample), minutes; "(n seeds)" when more than one."""
    recovered = [r["recovered"] for r in rows if r.get("recovered") is not None]
    kept = [r["kept_on_unshifted"] - base["unshifted"] for r in rows]
    sample = [
        r["reference_after"] - r["reference_before"]
        for r in rows
        if r.get("reference_after") is not None and r.get("reference_before") is not None
    ]
    minutes = statistics.fmean(r["seconds"] for r in rows) / 60
    seeds = f" ({len(rows)} seeds)" if len(rows) > 1 else ""
    reference = f", sample {_spread(sample)}" if sample else ""
    return f"{_spread(recovered, 100, ' %')}, old {_spread(kept)}{reference}, {minutes:.1f} min{seeds}"


def table(results: dict) -> str:
    cases = list(results)
    methods: dict[str, dict[str, list[dict]]] = {}
    for case in cases:
        for key, row in results[case]["variants"].items():
            name, _seed = _method(key)
            methods.setdefault(name, {}).setdefault(case, []).append(row)
    header = "| method | " + " | ".join(cases) + " |"
    lines = [header, "|" + "---|" * (len(cases) + 1)]
    bases = [results[c]["base"] for c in cases]
    shifts = [f"{b['unshifted']:.3f} → {b['shifted']:.3f} (n={b['n_test']})" for b in bases]
    lines.append("| base: unshifted → shifted | " + " | ".join(shifts) + " |")
    for name, by_case in methods.items():
        cells = [cell(by_case[c], results[c]["base"]) if c in by_case else "–" for c in cases]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    print(table(json.loads(parser.parse_args().results.read_text())))


if __name__ == "__main__":
    main()
