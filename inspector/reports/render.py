"""The shift / lot report as an A4 PDF (matplotlib's PDF backend: no extra dependency).

Page 1 is what a shift lead reads at handover: the counts, yield, UNSURE and override rates, the
yield trend and the defect Pareto. Page 2 is for the engineer: per-stage latency, cost per part
against the unmerged twin, the model versions and the runs with their drops.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from inspector.reports.cost import PartCost
from inspector.reports.window import ReportWindow
from inspector.store.summary import LedgerSummary

A4 = (8.27, 11.69)
COLORS = {"OK": "#1b873f", "NG": "#c62828", "UNSURE": "#e0a100", "ERROR": "#6a1b9a"}
VERDICTS = tuple(COLORS)
MUTED = "#5f6b7a"
PARETO_BARS = 10
NOTE_WIDTH = 125  # characters per line of the small print at 7 pt on A4


@dataclass
class ReportInput:
    window: ReportWindow
    summary: LedgerSummary
    cost: PartCost
    ledger: str  # where the numbers come from (no password)
    generated: datetime
    audit: str = "audit trail not checked"  # whether the hash chain verified (ChainCheck.text())


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "–"


def _num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.{digits}f}{unit}"


def kpis(summary: LedgerSummary) -> list[tuple[str, str]]:
    """The headline numbers, in the order a shift lead reads them."""
    v = summary.verdicts
    judged = v["OK"] + v["NG"] + v["UNSURE"]
    drops = sum(sum(((run.get("stats") or {}).get("drops") or {}).values()) for run in summary.runs)
    return [
        ("parts judged", f"{summary.parts:,}"),
        ("yield (OK of judged)", _pct(v["OK"], judged)),
        ("NG", f"{v['NG']:,} ({_pct(v['NG'], summary.parts)})"),
        ("UNSURE (to a person)", f"{v['UNSURE']:,} ({_pct(v['UNSURE'], summary.parts)})"),
        ("ERROR", f"{v['ERROR']:,}"),
        ("reviewed by QA", f"{summary.reviewed:,} ({_pct(summary.reviewed, summary.parts)})"),
        (
            "overrides (QA changed the class)",
            f"{summary.overrides:,} ({_pct(summary.overrides, summary.reviewed)} of reviewed)",
        ),
        ("frames dropped (whole runs)", f"{drops:,}"),
    ]


def _header(fig: Figure, data: ReportInput, page: int) -> None:
    stations = sorted({run["station"] for run in data.summary.runs}) or [data.window.station or "–"]
    fig.text(0.06, 0.965, "LTM Inspector — line report", fontsize=15, weight="bold")
    fig.text(0.06, 0.945, f"{data.window.title}   ·   station {', '.join(stations)}", fontsize=10)
    fig.text(
        0.06,
        0.93,
        f"generated {data.generated.astimezone():%Y-%m-%d %H:%M %Z} from {data.ledger}",
        fontsize=7,
        color=MUTED,
    )
    broken = "BROKEN" in data.audit
    fig.text(
        0.06,
        0.918,
        data.audit,
        fontsize=7,
        color="#b00020" if broken else MUTED,
        weight="bold" if broken else None,
    )
    fig.text(0.94, 0.02, f"page {page} of 2", fontsize=7, color=MUTED, ha="right")


def _table(ax, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None, widths=None) -> None:
    ax.axis("off")
    if not rows:
        ax.text(0, 0.5, "none", fontsize=9, color=MUTED)
        return
    table = ax.table(
        cellText=[list(r) for r in rows],
        colLabels=list(header) if header else None,
        cellLoc="left",
        colLoc="left",
        loc="upper left",
        colWidths=widths,
        edges="horizontal",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    table.scale(1, 1.35)


def _trend(ax, summary: LedgerSummary) -> None:
    starts = [b.start.astimezone() for b in summary.buckets]
    width = summary.bucket_minutes / 1440 * 0.9
    bottom = np.zeros(len(starts))
    for verdict in VERDICTS:
        counts = np.array([b.verdicts.get(verdict, 0) for b in summary.buckets], float)
        if counts.any():
            ax.bar(starts, counts, width, bottom=bottom, color=COLORS[verdict], label=verdict, align="edge")
            bottom += counts
    ax.set_ylabel("parts per bar")
    ax.set_title(f"Parts and yield, {summary.bucket_minutes}-minute bars", fontsize=10, loc="left")
    twin = ax.twinx()
    yields = [
        100.0 * b.verdicts["OK"] / judged
        if (judged := b.verdicts["OK"] + b.verdicts["NG"] + b.verdicts["UNSURE"])
        else np.nan
        for b in summary.buckets
    ]
    centers = [s + timedelta(minutes=summary.bucket_minutes / 2) for s in starts]
    twin.plot(centers, yields, "o-", color="#1f3b57", markersize=3, lw=1.2, label="yield %")
    twin.set_ylim(0, 105)
    twin.set_ylabel("yield %")
    ax.legend(loc="lower left", fontsize=7, ncols=5, frameon=False)
    step = max(1, -(-len(starts) // 8))  # at most 8 labels, on bar edges
    ax.set_xticks(starts[::step])
    one_day = (starts[-1] - starts[0]).days < 1
    ax.xaxis.set_major_formatter(
        mdates.DateFormatter("%H:%M" if one_day else "%d.%m %H:%M", tz=starts[0].tzinfo)
    )


def _pareto(ax, summary: LedgerSummary) -> None:
    ax.set_title("Defect Pareto (NG parts by class)", fontsize=10, loc="left")
    items = summary.defects.most_common()
    if not items:
        ax.text(0.5, 0.5, "no NG parts in this window", ha="center", va="center", color=MUTED)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    shown = items[:PARETO_BARS]
    rest = sum(count for _, count in items[PARETO_BARS:])
    if rest:
        shown.append(("other", rest))
    names = [name for name, _ in shown]
    counts = np.array([count for _, count in shown], float)
    ax.bar(names, counts, color=COLORS["NG"], width=0.6)
    ax.set_xlim(-0.6, max(len(names), 5) - 0.4)  # a lone defect class stays a bar, not a wall
    ax.set_ylabel("NG parts")
    ax.tick_params(axis="x", labelrotation=30 if len(names) > 4 else 0, labelsize=8)
    cumulative = ax.twinx()
    cumulative.plot(names, 100.0 * counts.cumsum() / counts.sum(), "o-", color="#1f3b57", markersize=3)
    cumulative.set_ylim(0, 105)
    cumulative.set_ylabel("cumulative %")


def _latency(ax, summary: LedgerSummary) -> None:
    ax.set_title("Latency per stage (every part in the window)", fontsize=10, loc="left")
    stages = [(stage, values) for stage, values in summary.latency_ms.items() if len(values)]
    if not stages:
        ax.text(0.5, 0.5, "no latencies recorded", ha="center", va="center", color=MUTED)
        return
    labels = {"queue": "capture → queue", "infer": "inference", "total": "frame → verdict"}
    ax.boxplot(
        [values for _, values in stages],
        orientation="horizontal",
        whis=(1, 99),
        showfliers=False,
        tick_labels=[labels.get(stage, stage) for stage, _ in stages],
    )
    for row, (_, values) in enumerate(stages, 1):
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        ax.text(
            ax.get_xlim()[1],
            row,
            f"  p50 {p50:.1f} · p95 {p95:.1f} · p99 {p99:.1f} ms",
            va="center",
            fontsize=7.5,
        )
    ax.set_xlabel("ms (box: quartiles, whiskers: 1st–99th percentile)")


def _cost_rows(cost: PartCost) -> list[tuple[str, ...]]:
    return [
        (name, _num(cpu, 1, " ms"), _num(capacity, 1), _num(headroom, 1, "×"))
        for name, cpu, capacity, headroom in cost.rows()
    ]


def _cost_note(cost: PartCost) -> str:
    rate = _num(cost.rate_parts_s, 2)
    lines = [
        f"Line rate while running: {rate} parts/s. CPU-ms: the line process's CPU time over the parts it "
        f"judged ({cost.runs_measured} run(s) recorded it). Capacity: the lower of 1000 / inference p50 and "
        f"{cost.cores} cores × 1000 / CPU-ms. Headroom: capacity over the line's rate."
    ]
    if cost.twin:
        t = cost.twin
        lines.append(
            f"Twin measured now on this PC ({t.backend}, batch 1, {t.rounds} interleaved rounds): "
            f"{t.model} {t.cpu_ms:.1f} CPU-ms / {t.wall_ms:.1f} ms per part, "
            f"unmerged twin {t.twin_cpu_ms:.1f} / {t.twin_wall_ms:.1f} ms: "
            f"LTM uses {t.cpu_ratio:.2f}× the twin's CPU."
        )
    else:
        lines.append(f"Unmerged twin not measured: {cost.twin_note}")
    return "\n".join(textwrap.fill(line, NOTE_WIDTH) for line in lines)


def page_one(data: ReportInput) -> Figure:
    fig = Figure(figsize=A4)
    _header(fig, data, 1)
    _table(fig.add_axes((0.06, 0.72, 0.88, 0.19)), kpis(data.summary), widths=[0.55, 0.45])
    if data.summary.parts:
        _trend(fig.add_axes((0.1, 0.43, 0.78, 0.25)), data.summary)
        _pareto(fig.add_axes((0.1, 0.08, 0.78, 0.27)), data.summary)
    else:
        fig.text(0.5, 0.5, "No parts were judged in this window.", ha="center", fontsize=12, color=MUTED)
    return fig


def page_two(data: ReportInput) -> Figure:
    fig = Figure(figsize=A4)
    _header(fig, data, 2)
    _latency(fig.add_axes((0.2, 0.72, 0.5, 0.17)), data.summary)
    fig.text(0.06, 0.655, "Cost per part", fontsize=10)
    _table(
        fig.add_axes((0.06, 0.57, 0.88, 0.075)),
        _cost_rows(data.cost),
        ("model", "CPU-ms per part", "capacity, parts/s", "headroom"),
        [0.34, 0.22, 0.24, 0.2],
    )
    fig.text(0.06, 0.50, _cost_note(data.cost), fontsize=7, color=MUTED, va="bottom")
    fig.text(0.06, 0.465, "Model versions", fontsize=10)
    versions = [
        (v["name"], v["sha256"][:12], f"{v['parts']:,}", str(v["runs"])) for v in data.summary.versions()
    ]
    _table(
        fig.add_axes((0.06, 0.37, 0.88, 0.09)),
        versions,
        ("model", "weights sha256", "parts", "runs"),
        [0.4, 0.25, 0.2, 0.15],
    )
    fig.text(0.06, 0.335, "Runs", fontsize=10)
    _table(
        fig.add_axes((0.06, 0.06, 0.88, 0.27)),
        _run_rows(data.summary),
        ("run", "started", "status", "lot", "parts", "drops", "overruns"),
        [0.08, 0.2, 0.14, 0.2, 0.12, 0.14, 0.12],
    )
    return fig


def _run_rows(summary: LedgerSummary) -> list[tuple[str, ...]]:
    rows = []
    for run in summary.runs[-14:]:
        stats = run.get("stats") or {}
        drops = sum((stats.get("drops") or {}).values())
        rows.append(
            (
                str(run["id"]),
                f"{run['started_at'].astimezone():%m-%d %H:%M}",
                run["status"],
                run["lot"] or "–",
                f"{summary.parts_by_run.get(run['id'], 0):,}",
                f"{drops:,}",
                str(stats.get("overruns", "–")),
            )
        )
    return rows


# Lots, stations, class and model names are typed by people: matplotlib would read ``$x^{`` as
# mathtext (and stop on it, or draw something else). Every text of the report is literal.
LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}


def write_pdf(data: ReportInput, target: Path) -> None:
    """Both pages into ``target`` (the caller makes the write atomic)."""
    with (
        rc_context(LITERAL_TEXT),
        PdfPages(
            target,
            metadata={
                "Title": f"Line report: {data.window.title}",
                "Creator": "LTM Inspector",
                "CreationDate": data.generated.astimezone(timezone.utc),
            },
        ) as pdf,
    ):
        for page in (page_one(data), page_two(data)):
            pdf.savefig(page)


def write_png(data: ReportInput, target: Path, page: int = 1, dpi: int = 110) -> None:
    """One page as PNG: what the app previews and docs/ shows."""
    with rc_context(LITERAL_TEXT):
        (page_one if page == 1 else page_two)(data).savefig(target, dpi=dpi, format="png")
