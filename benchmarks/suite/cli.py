"""``python -m benchmarks.suite``: the command line (usage in the package docstring and
BENCHMARKS.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.suite.orchestration import Suite
from benchmarks.suite.profiles import PROFILES, ROOT

DESCRIPTION = (
    "LTM against the unmerged model and ToMe, side by side, with the paper's headline table beside it."
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=DESCRIPTION)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--only-dataset", nargs="+", help="datasets of the profile to train (default: all)")
    parser.add_argument("--only-backbone", nargs="+", help="backbones of the profile to train (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds to train (default: the profile's)")
    parser.add_argument(
        "--report", action="store_true", help="only rebuild JSON, PNG and tables from the cache"
    )
    parser.add_argument(
        "--no-speed",
        action="store_true",
        help="train only; leave the speed step to a later run (chain several trainings, time once)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks",
        help="root: runs in OUT/runs/suite/<profile>, results in OUT/results (default: benchmarks/)",
    )
    args = parser.parse_args(argv)
    suite = Suite(
        args.profile,
        args.out,
        datasets=args.only_dataset,
        backbones=args.only_backbone,
        seeds=args.seeds,
        log=lambda line: print(line, flush=True),
        measure=not args.no_speed,
    )
    if args.report:
        suite.report()
    else:
        suite.run()
