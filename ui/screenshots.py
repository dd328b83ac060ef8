"""``make screenshots``: every screen rendered offscreen to ``docs/screenshots/`` at two sizes.

A real demo run fills a throw-away home first (the simulated ELPV station through the bundled
model into a fresh ledger and archive), so every screen shows what a user would see on day one.

    QT_QPA_PLATFORM=offscreen python -m ui.screenshots [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtWidgets import QWidget

SIZES = ((1920, 1080), (1366, 768))


def pump(seconds: float, until: Callable[[], bool] | None = None) -> None:
    """Let Qt run (workers report back, timers tick) for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if until is not None and until():
            return
        time.sleep(0.02)


def prepare_home(home: Path) -> None:
    """A short real run of the demo station, so Review and Models have something to show."""
    from inspector.line.build import LineRequest, build_pipeline
    from inspector.line.demo import demo_model_path
    from inspector.registry import Registry

    registry = Registry(home)
    version = registry.add(demo_model_path(), note="bundled demo model (ELPV)")
    registry.deploy(version.id)
    pipeline = build_pipeline(
        LineRequest(
            source="sim?fps=0",
            home=home,
            model="demo",
            frames=160,
            station="demo-elpv",
            lot="LOT-0001",
            operator="ana",
            drop="block",
        )
    )
    pipeline.run()


def save(widget: QWidget, out: Path, name: str, size: tuple[int, int]) -> Path:
    widget.resize(*size)
    pump(0.6)
    path = out / f"{name}-{size[0]}x{size[1]}.png"
    widget.grab().save(str(path))
    print(f"wrote {path}")
    return path


def render(out: Path) -> list[Path]:
    from ui.app import _application
    from ui.context import AppContext
    from ui.main_window import MainWindow

    app = _application()  # noqa: F841 - the QApplication must exist first
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="inspector-shots-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        prepare_home(home)
        context = AppContext(home)
        window = MainWindow(context)
        window.show()
        window.live.overlay.setChecked(True)
        window.live.start(source="sim?fps=12", model="demo", station="demo-elpv")
        pump(60, lambda: int(window.live.counter_labels["total"].text() or 0) >= 40)
        for size in SIZES:
            window.tabs.setCurrentWidget(window.live)
            written.append(save(window, out, "live", size))
        window.live.controller.stop_and_wait()
        pump(1.0)
        for tab, name in (
            (window.review, "review"),
            (window.finetune, "finetune"),
            (window.models, "models"),
            (window.settings, "settings"),
        ):
            window.tabs.setCurrentWidget(tab)
            pump(8.0, lambda t=tab: getattr(t, "ready_for_screenshot", lambda: True)())
            if tab is window.review:
                window.review.table.selectRow(0)
                pump(3.0)
            for size in SIZES:
                written.append(save(window, out, name, size))
        written += render_wizard(window, out)
        window.close()
        context.close()
    return written


def elpv_station(root: Path, per_class: int = 150) -> Path:
    """A small 'new station' from ELPV cells, under a stronger lighting, for the wizard to adapt to."""
    import cv2

    from data.augment import apply, build_augmentation
    from data.elpv import load_elpv
    from data.images import read_image

    shift = build_augmentation(["lighting"], severity=2, seed=0)
    counts: dict[str, int] = {}
    for sample in load_elpv(0).split("test"):
        if counts.get(sample.label, 0) >= per_class:
            continue
        counts[sample.label] = counts.get(sample.label, 0) + 1
        folder = root / sample.label
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / sample.path.name), apply(shift, read_image(sample.path)))
    return root


def render_wizard(
    window, out: Path, station: Path | None = None, epochs: int = 3, prefix: str = "wizard"
) -> list[Path]:  # window: ui.main_window.MainWindow
    """All six wizard pages with a real run of ``epochs``, on ``station`` (default: a small
    lighting-shifted ELPV station), adapting the deployed model."""
    written = []
    with tempfile.TemporaryDirectory(prefix="inspector-station-") as tmp:
        station = station or elpv_station(Path(tmp) / "station")
        wizard = window.finetune.open_wizard()
        page = wizard.station_page
        page.path.setText(str(station))
        page.check()
        pump(60, lambda: not page.busy)
        steps = [
            ("1-station", lambda: True),
            ("2-augmentation", lambda: wizard.augment_page.rendered),
            ("3-what-trains", lambda: True),
            ("4-training", lambda: wizard.train_page.summary is not None or bool(wizard.train_page.failed)),
            ("5-before-after", lambda: wizard.compare_page.speed is not None),
            ("6-save", lambda: True),
        ]
        for index, (name, ready) in enumerate(steps):
            if index:
                if name == "4-training":
                    wizard.recipe_page.epochs.setValue(epochs)
                wizard.next()
            pump(1800, ready)
            for size in SIZES:
                written.append(save(wizard, out, f"{prefix}-{name}", size))
        wizard.reject()
        pump(2.0)
    return written


def render_wizard_on(base: Path, station: Path, out: Path, epochs: int, prefix: str) -> list[Path]:
    """The wizard alone, adapting ``base`` (registered and deployed in a throw-away home) to ``station``."""
    from inspector.registry import Registry
    from ui.app import _application
    from ui.context import AppContext
    from ui.main_window import MainWindow

    app = _application()  # noqa: F841 - the QApplication must exist first
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inspector-shots-") as tmp:
        home = Path(tmp) / "home"
        registry = Registry(home)
        registry.deploy(registry.add(base, note=f"base for the wizard: {base.name}").id)
        context = AppContext(home)
        window = MainWindow(context)
        window.show()
        written = render_wizard(window, out, station, epochs, prefix)
        window.close()
        context.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument(
        "--wizard",
        nargs=2,
        type=Path,
        metavar=("BASE", "STATION"),
        help="Only the fine-tune wizard, adapting the bundle BASE to the station folder STATION.",
    )
    parser.add_argument("--epochs", type=int, default=3, help="The wizard's training epochs.")
    parser.add_argument("--prefix", default="wizard", help="File name prefix of the wizard's pages.")
    args = parser.parse_args()
    if args.wizard:
        render_wizard_on(*args.wizard, args.out, args.epochs, args.prefix)
    else:
        render(args.out)


if __name__ == "__main__":
    main()
