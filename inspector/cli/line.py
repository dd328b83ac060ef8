"""The live-line commands: ``inspector run``, ``inspector demo``, ``inspector results``, ``inspector db``.

``run`` shows a live status (fps, counters, yield, p95 latency) with rich while frames flow and a
summary when the run ends; Ctrl-C or SIGTERM stops it cleanly, after every queued frame is judged
and written.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from inspector.cli.common import (
    DbOption,
    HomeOption,
    choice,
    console,
    db_url,
    err,
    existing_folder,
    fail,
    progress,
    user_errors,
)
from inspector.errors import InspectorError
from inspector.home import app_home
from inspector.settings import load_settings
from models.files import atomic_write

OutputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--output",
        metavar="URL",
        help="Line output URL, repeatable (default: the settings' list), e.g. mqtt://broker:1883/prefix "
        "(mqtts:// for TLS), modbus://127.0.0.1:5020?reject=NG,UNSURE,ERROR, opc.tcp://127.0.0.1:4840. "
        "See README.",
        show_default=False,
    ),
]

results_app = typer.Typer(help="Query and export the results ledger.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the results database.", no_args_is_help=True)


def _status_table(pipeline) -> Table:  # inspector.line.pipeline.Pipeline, imported lazily
    snap = pipeline.stats.snapshot()
    table = Table(title=f"{pipeline.source.name}", title_justify="left", show_header=True, box=None)
    for column in ("fps", "frames", "OK", "NG", "UNSURE", "ERROR", "yield", "drops", "overruns", "p95 ms"):
        table.add_column(column, justify="right")
    total = snap.latency_ms.get("total", {})
    row = [
        f"{snap.fps:.1f}",
        str(snap.entered),
        *(str(snap.verdicts.get(v, 0)) for v in ("OK", "NG", "UNSURE", "ERROR")),
        "–" if snap.yield_pct is None else f"{snap.yield_pct:.1f}%",
        str(snap.dropped),
        str(snap.overruns),
        f"{total.get('p95', 0):.1f}",
    ]
    healths = pipeline.outputs.health()
    if healths:  # line outputs: how many deliver now (the summary names each)
        table.add_column("outputs", justify="right")
        up = sum(1 for _, health in healths if health.state == "connected")
        row.append(f"{up}/{len(healths)} up")
    if pipeline.shadow is not None:  # the candidate beside the line: agreement so far, frames shed
        shadow = pipeline.shadow.snapshot()
        table.add_column(f"shadow {shadow.name}", justify="right")
        agreement = "–" if shadow.agreement_pct is None else f"{shadow.agreement_pct:.1f}%"
        row.append(f"{agreement} of {shadow.judged}, {shadow.shed} shed")
    table.add_row(*row)
    return table


def _summary(pipeline, url: str) -> None:
    snap = pipeline.stats.snapshot()
    table = Table(title="run summary", title_justify="left", show_header=False, box=None)
    table.add_row("run", f"{pipeline.run_id} on {pipeline.source.name}")
    table.add_row("ledger", url)
    table.add_row("frames", f"{snap.entered} in {snap.elapsed_s:.1f} s ({snap.fps_mean:.1f} fps)")
    table.add_row("verdicts", ", ".join(f"{k} {v}" for k, v in sorted(snap.verdicts.items())) or "none")
    if snap.yield_pct is not None:
        table.add_row("yield", f"{snap.yield_pct:.1f}% OK")
    table.add_row("written", f"{snap.written} result rows, {snap.archived} images archived")
    table.add_row("drops", ", ".join(f"{k} {v}" for k, v in snap.drops.items()) or "none")
    table.add_row("overruns", f"{snap.overruns} over {pipeline.stats.cycle_budget_ms:.0f} ms")
    for stage, values in snap.latency_ms.items():
        table.add_row(
            f"{stage} ms", f"p50 {values['p50']:.1f}  p95 {values['p95']:.1f}  p99 {values['p99']:.1f}"
        )
    unaccounted = snap.entered - snap.written - snap.dropped
    table.add_row("unaccounted", str(unaccounted))
    if pipeline.shadow is not None:
        shadow = pipeline.shadow.snapshot()
        shed = ", ".join(f"{k} {v}" for k, v in shadow.shed_reasons.items())
        table.add_row("shadow", shadow.line().removeprefix("Shadow: ") + (f" ({shed})" if shed else ""))
    for name, health in pipeline.outputs.health():
        delivered = f"{health.sent} sent" if health.sent else ""
        counts = ", ".join(
            x
            for x in (
                delivered,
                f"{health.pending} kept" if health.pending else "",
                f"{health.dropped} dropped" if health.dropped else "",
            )
            if x
        )
        table.add_row(f"output {name}", health.state + (f" ({counts})" if counts else ""))
    drift = pipeline.watch.snapshot()
    cost = f"; statistics {drift.stats_ms:.2f} ms per frame" if drift.stats_ms is not None else ""
    alarms = f"; in alarm: {', '.join(drift.alarms)}" if drift.alarms else ""
    table.add_row("drift watch", f"inputs {drift.reference}{cost}{alarms}")
    console.print(table)
    for event in pipeline.events:
        if event.level != "info":
            err.print(f"[yellow]{event.level}:[/] {event.message}", highlight=False)


def run_line(pipeline, url: str, on_tick=None) -> None:
    """Run until the source ends, ``--frames`` is reached, Ctrl-C or SIGTERM; status on stderr."""
    previous = signal.signal(signal.SIGTERM, lambda *_: pipeline.stop())
    engine = pipeline.engine
    progress(engine.backend_line())
    pipeline.start()
    try:
        if err.is_terminal:
            with Live(_status_table(pipeline), console=err, refresh_per_second=4, transient=True) as live:
                while not pipeline.wait(0.25):
                    live.update(_status_table(pipeline))
                    if on_tick:
                        on_tick()
        else:
            last = time.monotonic()
            while not pipeline.wait(0.25):
                if on_tick:
                    on_tick()
                if time.monotonic() - last >= 5:
                    last = time.monotonic()
                    snap = pipeline.stats.snapshot()
                    shadow = "" if pipeline.shadow is None else f"; {pipeline.shadow.snapshot().line()}"
                    progress(
                        f"{snap.entered} frames, {snap.fps:.1f} fps, {snap.verdicts}, drops {snap.dropped}"
                        + shadow
                    )
    except KeyboardInterrupt:
        progress("stopping: judging and writing what is already queued…")
        pipeline.stop()
        pipeline.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    _summary(pipeline, url)


def _build_pipeline(**fields):  # LineRequest fields; imported lazily for a fast --help
    from inspector.line.build import LineRequest, build_pipeline, ledger_url

    settings = load_settings(fields["home"])
    ok_every = fields.pop("ok_every", None)
    if ok_every is not None:
        settings.archive_ok_every = ok_every
    request = LineRequest(settings=settings, **fields)
    return build_pipeline(request), ledger_url(request.db, request.home, settings)


def run(
    source: Annotated[
        str, typer.Option("--source", "-s", help="Camera index, video, URL, folder, sim, linescan, genicam:…")
    ],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Bundle folder or 'demo' (default: deployed)")
    ] = None,
    db: DbOption = None,
    frames: Annotated[int | None, typer.Option("--frames", "-n", min=1, help="Stop after N frames.")] = None,
    lot: Annotated[str, typer.Option("--lot", help="Lot / batch id recorded with the run.")] = "",
    operator: Annotated[str, typer.Option("--operator", help="Operator recorded with the run.")] = "",
    station: Annotated[str, typer.Option("--station", help="Station name in the ledger.")] = "station-1",
    backend: Annotated[
        str,
        choice(
            "--backend",
            # inspector.line.inference.BACKENDS, without importing torch
            ("auto", "torch", "onnx", "int8", "openvino", "openvino-int8"),
            "auto (the fastest backend gated on this PC; torch when the model does not export), torch, "
            "onnx, int8 (ONNX Runtime int8 behind an accuracy gate, else onnx), openvino, openvino-int8.",
        ),
    ] = "auto",
    fps: Annotated[
        float | None, typer.Option("--fps", help="Replay rate for files/simulations (0: unpaced).")
    ] = None,
    archive: Annotated[
        bool, typer.Option("--archive/--no-archive", help="Keep images of NG/UNSURE parts.")
    ] = True,
    ok_every: Annotated[
        int, typer.Option("--ok-every", min=0, help="Archive one OK image in N (0: none).")
    ] = 50,
    queue_size: Annotated[int, typer.Option("--queue", min=1, help="Frames the capture queue holds.")] = 8,
    drop: Annotated[
        str, choice("--drop", ("oldest", "newest", "block"), "Full queue: drop oldest, newest, or block.")
    ] = "oldest",
    shadow: Annotated[
        str | None,
        typer.Option(
            "--shadow",
            help="A candidate (model version like v3, or a bundle folder) judging the same frames beside "
            "the model, never driving a verdict; disagreements are kept for Review, and it is shed first "
            "when the line falls behind.",
        ),
    ] = None,
    output: OutputOption = None,
    home: HomeOption = None,
) -> None:
    """Inspect a line headless: one verdict per frame into the results ledger, live status on stderr.

    With accounts, an operator (or QA, or an engineer) logs in; the run's operator is then the
    logged-in person unless --operator names another.
    """
    from inspector.cli.login import actor_at

    with user_errors(ValueError):
        actor = actor_at(home, db, "run_line")
        if actor.role is not None and not operator:
            operator = actor.name
        pipeline, url = _build_pipeline(
            source=source,
            model=model,
            home=app_home(home),
            db=db,
            frames=frames,
            lot=lot,
            operator=operator,
            station=station,
            backend=backend,
            fps=fps,
            archive=archive,
            queue_size=queue_size,
            drop=drop,
            ok_every=ok_every,
            shadow=shadow,
            outputs=output or None,
        )
        run_line(pipeline, url)
    if pipeline.error:
        raise fail(pipeline.error, code=1)


def demo(
    headless: Annotated[bool, typer.Option("--headless", help="No window: terminal status only.")] = False,
    frames: Annotated[
        int | None, typer.Option("--frames", "-n", min=0, help="Stop after N frames (0: until Ctrl-C).")
    ] = None,
    fps: Annotated[float, typer.Option("--fps", help="Parts per second on the simulated line.")] = 10.0,
    drift_after: Annotated[
        int | None,
        typer.Option("--drift-after", min=0, help="Switch the lighting shift on after N frames (0: never)."),
    ] = None,
    db: DbOption = None,
    output: OutputOption = None,
    home: HomeOption = None,
) -> None:
    """The simulated ELPV solar-cell station with the bundled LTM model."""
    home_dir = app_home(home)
    if not headless:
        if _open_app(home_dir):
            return
        progress("running the demo station headless instead (open the app with `inspector gui`)")
    limit = frames or None
    switch_at = drift_after if drift_after is not None else (limit // 2 if limit else 300)
    with user_errors(ValueError):
        from inspector.cli.login import actor_at
        from inspector.line.sources.spec import check_rate

        actor_at(home_dir, db, "run_line")  # the app asks at its own login screen

        check_rate(fps)  # "sim?fps=nan" would otherwise name a source option the user never typed
        pipeline, url = _build_pipeline(
            source=f"sim?fps={fps}",
            model="demo",
            home=home_dir,
            db=db,
            frames=limit,
            lot="demo",
            station="demo-elpv",
            outputs=output or None,
        )
        switched = False

        def drift() -> None:
            nonlocal switched
            if switch_at and not switched and pipeline.stats.entered >= switch_at:
                switched = True
                pipeline.source.set_profile("lighting", 3)
                pipeline.event("info", "profile", "demo: station lighting shift switched on")
                progress(f"frame {switch_at}: the station's lamp changed; watch UNSURE climb")

        run_line(pipeline, url, drift)


def _open_app(home: Path) -> bool:
    """Hand over to the desktop app when there is a display and the app is installed."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        progress("no display here")
        return False
    try:
        from ui.app import run_demo  # the one planned hand-over to ui/ (DESIGN §2), lazily
        from ui.platform_check import window_problem
    except ImportError as exc:
        progress(f"the desktop app cannot start here ({exc})")
        return False
    problem = window_problem()  # before Qt tries: its own failure aborts with no package named
    if problem:
        err.print(problem, highlight=False, markup=False, soft_wrap=True)  # one line, however long
        return False
    run_demo(home)
    return True


def _when(text: str | None, option: str = "--since", local: bool = False) -> datetime | None:
    """ISO 8601 (``2026-11-28``, ``2026-11-28T06:00``) or relative (``8h``, ``7d``, ``30m``).

    A time without a zone is UTC, or this PC's local time with ``local`` (a shift lead's clock).

    A bad value is an :class:`InspectorError` (one line): ``999999d`` reaches before year 1.
    """
    if not text:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        try:
            return datetime.now(timezone.utc) - timedelta(**{units[text[-1]]: int(text[:-1])})
        except OverflowError:
            raise InspectorError(f"{option} {text}: too far back (before the year 1)") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InspectorError(f"{option} {text!r}: use ISO 8601 (2026-11-28T06:00) or 8h / 7d / 30m") from None
    if moment.tzinfo:
        return moment
    return moment.astimezone() if local else moment.replace(tzinfo=timezone.utc)


def _window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--since`` and ``--until`` parsed; reversed (or equal) they select nothing, which is a typo
    rather than an answer, so they are refused as the report refuses them."""
    start, end = _when(since), _when(until, "--until")
    if start is not None and end is not None and end <= start:
        raise InspectorError("--until must be later than --since")
    return start, end


def gui(home: HomeOption = None) -> None:
    """Open the desktop app (Live, Review, Fine-tune, Models, Settings)."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        raise fail("no display: the app needs a desktop session (try `inspector demo --headless`)")
    from ui.app import run_app
    from ui.platform_check import window_problem

    problem = window_problem()  # before Qt tries: its own failure aborts with no package named
    if problem:
        raise fail(problem)
    raise SystemExit(run_app(app_home(home)))


@results_app.command("export")
def results_export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV file (default: standard output).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="Output format (csv).")] = "csv",
    since: Annotated[str | None, typer.Option("--since", help="From (ISO 8601 or 8h / 7d).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until (ISO 8601 or 8h / 7d ago).")] = None,
    verdict: Annotated[
        list[str] | None, typer.Option("--verdict", help="OK, NG, UNSURE, ERROR (repeat).")
    ] = None,
    lot: Annotated[str | None, typer.Option("--lot", help="Only this lot.")] = None,
    reviewed: Annotated[
        bool | None, typer.Option("--reviewed/--unreviewed", help="Only (un)reviewed.")
    ] = None,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Results as CSV, one row per frame with probabilities and review state."""
    from inspector.store import Ledger, ResultFilter

    if fmt != "csv":
        raise fail(f"unknown format {fmt!r} (csv)")
    verdicts = tuple(v.upper() for v in verdict or ())
    unknown = [v for v in verdicts if v not in ("OK", "NG", "UNSURE", "ERROR")]
    if unknown:
        raise fail(f"unknown verdict {unknown[0]!r} (OK, NG, UNSURE, ERROR)")
    existing_folder(out)
    with user_errors():
        from inspector.cli.login import actor_at

        actor_at(home, db, "export")
        start, end = _window(since, until)
        filt = ResultFilter(since=start, until=end, verdicts=verdicts, lot=lot, reviewed=reviewed)
        ledger = Ledger(db_url(db, app_home(home)), create=False)  # export reads: no new database
        if out is None:
            count = ledger.export_csv(sys.stdout, filt)
        else:
            written: list[int] = []

            def export_to(tmp: Path) -> None:
                with tmp.open("w", newline="", encoding="utf-8") as handle:
                    written.append(ledger.export_csv(handle, filt))

            atomic_write(out, export_to)  # the whole file or nothing
            count = written[0]
        ledger.close()
    progress(f"exported {count} results" + (f" to {out}" if out else ""))


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, home: HomeOption = None) -> None:
    """Migrate the results database to this version's schema (SQLite files are backed up first)."""
    from inspector.store import upgrade

    with user_errors():
        url = db_url(db, app_home(home))
        upgrade(url)
    console.print(f"{url}: up to date")
