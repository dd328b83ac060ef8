"""The per-method table of an adaptation study (``benchmarks.adaptation_shifts`` results) as Markdown:
one row per method, one column per shift; seeds pooled as mean ± std.

    python -m benchmarks.adaptation_table benchmarks/results/adaptation_keep.json
    python -m benchmarks.adaptation_table benchmarks/results/adaptation_shifts_test400_*.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path


def _method(key: str) -> tuple[str, int]:
    """``recalibrate+all+replay@10/s2`` -> (``all+replay``, 2); a rate or presets other than the
    default's stay in the name: ``all@10/lr0.0001/s1`` -> (``all (lr0.0001)``, 1)."""
    head, seed = key, 0
    if re.search(r"/s\d+$", key):
        head, _, number = key.rpartition("/s")
        seed = int(number)
    name, _, rest = head.partition("@")
    tuned = rest.partition("/")[2].replace("/", ", ")
    return name.removeprefix("recalibrate+") + (f" ({tuned})" if tuned else ""), seed


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


def merged(paths: list[Path]) -> dict:
    """Several results files as one (a study split over files so two runs never write one file);
    a shift found in two must have the same base scores, or the files describe different stations."""
    results: dict = {}
    for path in paths:
        for case, entry in json.loads(path.read_text()).items():
            if case not in results:
                results[case] = {**entry, "variants": dict(entry["variants"])}
                continue
            mine, theirs = results[case]["base"], entry["base"]
            if any(abs(mine[k] - theirs[k]) > 1e-9 for k in ("shifted", "unshifted")):
                sys.exit(f"{path}: {case} has another base than the earlier file's; not one station")
            results[case]["variants"].update(entry["variants"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    print(table(merged(parser.parse_args().results)))


if __name__ == "__main__":
    main()
