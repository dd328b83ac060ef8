"""Results-ledger speed: rows written per second in the writer thread's batch sizes, and QA's
review query over a month of results. Usage:

    python -m benchmarks.ledger_speed [--rows 1000000] [--db URL] [--json FILE]

Without ``--db`` it uses a fresh SQLite file in a temp folder (deleted afterwards); ``--db`` must
name an empty database. The month is seeded fast (large bulk batches, ~90 % OK, 6 % NG, 4 % UNSURE
over 30 days, six runs/lots, a few hundred already reviewed), then timed:

* write: ``Ledger.add_results`` with 50 and with 500 rows per transaction (targets: >= 2,000 rows/s);
* query: ``query_results(since, until, verdicts=(NG, UNSURE), reviewed=False, limit=100)`` and
  ``count_results`` of the same filter, over the last day and the last week of the month, "cold"
  (a freshly opened ledger: new connection, empty page cache of the database library; the OS file
  cache stays warm) and warm; medians (target: <= 200 ms for the query).

Targets are reported, never asserted. The JSON keeps one entry per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from inspector.store import Ledger, ResultFilter, ResultRecord, default_url

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 30
CLASSES = ("ok", "scratch", "spot")
LOTS = 6
SEED_BATCH = 20_000
WRITE_TARGET = 2_000.0
QUERY_TARGET_MS = 200.0
RESULTS = Path(__file__).with_name("results") / "ledger_speed.json"


def _record(rng: random.Random, run_id: int, frame: int, at: datetime) -> ResultRecord:
    draw = rng.random()
    verdict, label = (
        ("OK", "ok")
        if draw < 0.90
        else ("NG", rng.choice(CLASSES[1:]))
        if draw < 0.96
        else (
            "UNSURE",
            rng.choice(CLASSES),
        )
    )
    top = rng.uniform(0.5, 0.99) if verdict != "UNSURE" else rng.uniform(0.4, 0.6)
    rest = (1.0 - top) / 2
    probabilities = {name: (top if name == label else rest) for name in CLASSES}
    return ResultRecord(
        run_id=run_id,
        frame_index=frame,
        captured_at=at,
        verdict=verdict,
        label=label,
        confidence=top,
        probabilities=probabilities,
        ood_score=rng.uniform(0.0, 0.3),
        latency_queue_ms=rng.uniform(0.1, 2.0),
        latency_infer_ms=rng.uniform(5.0, 12.0),
        latency_total_ms=rng.uniform(6.0, 15.0),
        image_ref=f"2024/01/{frame:09d}.png" if verdict != "OK" else None,
    )


def seed(ledger: Ledger, rows: int, station: int, model: int) -> float:
    """Fill a month with ``rows`` results; returns the bulk rate in rows/s."""
    rng = random.Random(0)
    step = timedelta(days=DAYS) / rows
    per_run = -(-rows // LOTS)
    started = time.perf_counter()
    for lot in range(LOTS):
        run = ledger.start_run(station, model, "bench", operator="bench", lot=f"LOT-{lot + 1:03d}")
        first, last = lot * per_run, min(rows, (lot + 1) * per_run)
        for begin in range(first, last, SEED_BATCH):
            end = min(last, begin + SEED_BATCH)
            ledger.add_results([_record(rng, run, i - first, START + step * i) for i in range(begin, end)])
            print(f"\r  seeding {end:,}/{rows:,}", end="", flush=True)
        ledger.finish_run(run, {"frames": last - first})
    elapsed = time.perf_counter() - started
    print()
    return rows / elapsed


def review_some(ledger: Ledger, count: int) -> None:
    """QA has already worked through part of the month (so reviewed=False actually filters)."""
    filt = ResultFilter(verdicts=("NG", "UNSURE"), reviewed=False, until=START + timedelta(days=DAYS - 2))
    for row in ledger.query_results(filt, limit=count):
        ledger.review(row["id"], row["label"] or "ok", "bench-qa")


def write_rate(ledger: Ledger, station: int, model: int, batch: int, rows: int) -> float:
    """Rows/s through add_results, ``batch`` rows per transaction, like the writer thread."""
    rng = random.Random(batch)
    run = ledger.start_run(station, model, f"bench-write-{batch}", lot=f"WRITE-{batch}")
    at = START + timedelta(days=DAYS, hours=1)  # after the month: the queried windows stay as seeded
    batches = [
        [_record(rng, run, i, at + timedelta(milliseconds=i)) for i in range(b, min(rows, b + batch))]
        for b in range(0, rows, batch)
    ]
    started = time.perf_counter()
    for records in batches:
        ledger.add_results(records)
    elapsed = time.perf_counter() - started
    ledger.finish_run(run, {"frames": rows})
    return rows / elapsed


def _ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def time_queries(url: str, filt: ResultFilter, repeats: int) -> dict:
    query = {"cold": [], "warm": []}
    count = {"cold": [], "warm": []}
    found = 0
    for _ in range(repeats):
        with Ledger(url, migrate=False) as ledger:
            query["cold"].append(_ms(lambda ledger=ledger: ledger.query_results(filt, limit=100)))
            count["cold"].append(_ms(lambda ledger=ledger: ledger.count_results(filt)))
    with Ledger(url, migrate=False) as ledger:
        ledger.query_results(filt, limit=100)
        found = ledger.count_results(filt)
        for _ in range(repeats):
            query["warm"].append(_ms(lambda: ledger.query_results(filt, limit=100)))
            count["warm"].append(_ms(lambda: ledger.count_results(filt)))
    summary = {"matching_rows": found}
    for name, samples in (("query", query), ("count", count)):
        for state in ("cold", "warm"):
            summary[f"{name}_{state}_ms_median"] = round(statistics.median(samples[state]), 2)
            summary[f"{name}_{state}_ms_max"] = round(max(samples[state]), 2)
    return summary


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="results in the seeded month")
    parser.add_argument("--db", help="SQLAlchemy URL of an empty database (default: a temp SQLite file)")
    parser.add_argument("--write-rows", type=int, default=20_000, help="rows per write-rate measurement")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--reviews", type=int, default=300)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    scratch = None if args.db else Path(tempfile.mkdtemp(prefix="ledger-speed-"))
    url = args.db or default_url(scratch)
    try:
        with Ledger(url) as ledger:
            if ledger.count_results(ResultFilter()):
                raise SystemExit(f"{url}: not empty; the benchmark needs an empty database")
            station = ledger.ensure_station("bench")
            model = ledger.ensure_model_version("0" * 64, "bench", {"classes": list(CLASSES)}, {})
            print(f"ledger_speed on {ledger!r}")
            seed_rate = seed(ledger, args.rows, station, model)
            review_some(ledger, args.reviews)
            writes = {str(b): write_rate(ledger, station, model, b, args.write_rows) for b in (50, 500)}
        end = START + timedelta(days=DAYS)
        windows = {"last_day": timedelta(days=1), "last_week": timedelta(days=7)}
        queries = {
            name: time_queries(
                url,
                ResultFilter(since=end - span, until=end, verdicts=("NG", "UNSURE"), reviewed=False),
                args.repeats,
            )
            for name, span in windows.items()
        }
        backend = url.split(":", 1)[0].split("+", 1)[0]
        size_mb = round((scratch / "inspector.db").stat().st_size / 2**20, 1) if scratch else None
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    result = {
        "backend": backend,
        "rows": args.rows,
        "db_file_mb": size_mb,
        "seed_rows_per_s": round(seed_rate),
        "write_rows_per_s": {batch: round(rate) for batch, rate in writes.items()},
        "write_rows_each": args.write_rows,
        "queries": queries,
        "targets": {"write_rows_per_s": WRITE_TARGET, "query_ms": QUERY_TARGET_MS},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _print(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    stored = json.loads(args.json.read_text()) if args.json.exists() else {}
    stored[backend] = result
    args.json.write_text(json.dumps(stored, indent=2) + "\n")
    print(f"written to {args.json}")
    return result


def _print(result: dict) -> None:
    ok = "meets" if min(result["write_rows_per_s"].values()) >= WRITE_TARGET else "MISSES"
    print(
        f"\n{result['backend']}, {result['rows']:,} results (bulk seed {result['seed_rows_per_s']:,} rows/s)"
    )
    for batch, rate in result["write_rows_per_s"].items():
        print(f"  add_results, {batch:>3} rows/transaction: {rate:>9,} rows/s")
    print(f"  write target {WRITE_TARGET:,.0f} rows/s: {ok}")
    columns = ("query_cold", "query_warm", "count_cold", "count_warm")
    print(
        f"  {'NG+UNSURE, unreviewed':<22} {'rows':>7}"
        + "".join(f"{c.replace('_', ' '):>12}" for c in columns)
    )
    for name, q in result["queries"].items():
        cells = "".join(f"{q[c + '_ms_median']:>10.1f}ms" for c in columns)
        print(f"  {name:<22} {q['matching_rows']:>7,}{cells}")
    worst = max(q["query_cold_ms_median"] for q in result["queries"].values())
    verdict = "meets" if worst <= QUERY_TARGET_MS else "MISSES"
    print(f"  query target {QUERY_TARGET_MS:.0f} ms: {verdict} (worst median {worst:.1f} ms)")


if __name__ == "__main__":
    main()
