"""Review's fixed choices: page size, timings, filter choices, table columns and the screen's style.

Kept apart from the widgets so that the table model, the view and the tests read one definition.
"""

from __future__ import annotations

from datetime import timedelta

PAGE = 200
STALE_S = 60.0  # coming back to the tab re-queries when the table is older than this
DETAIL_DELAY_MS = 80  # holding ↓ must not start one image load per row flown past
IMAGE_SIDE = 1400  # archived images are shrunk to this in the worker, never on the UI thread
MAX_CLASS_KEYS = 9

TIME_RANGES = [
    ("Last 8 h", timedelta(hours=8)),
    ("Last 24 h", timedelta(hours=24)),
    ("Last 7 days", timedelta(days=7)),
    ("All time", None),
    ("Custom range", "custom"),
]
VERDICT_CHOICES = [
    ("All verdicts", ()),
    ("NG + UNSURE", ("NG", "UNSURE")),
    ("NG", ("NG",)),
    ("UNSURE", ("UNSURE",)),
    ("OK", ("OK",)),
    ("ERROR", ("ERROR",)),
]
SHADOW_CHOICES = [("All parts", False), ("Disagreements (shadow)", True)]
REVIEW_CHOICES = [("Not reviewed", False), ("Reviewed", True), ("Any review state", None)]
REPORT_CHOICES = [
    ("Current shift", "current"),
    ("Last complete shift", "last"),
    ("The filters' time range (or lot)", "filters"),
]
DEFAULTS = {"time": "All time", "verdict": "NG + UNSURE", "review": "Not reviewed"}

# (key, header, width): most telling first, so a narrow window scrolls away only the least needed.
COLUMN_SPEC = [
    ("reviewed", "✓", 32),
    ("captured", "Captured", 166),
    ("verdict", "Verdict", 82),
    ("label", "Class", 96),
    ("confidence", "Conf.", 62),
    ("qa", "QA label", 96),
    ("truth", "Truth", 84),
    ("lot", "Lot", 100),
    ("ood", "OOD", 58),
    ("where", "Run · frame", 90),
]
KEYS = [key for key, _, _ in COLUMN_SPEC]
COLUMNS = [header for _, header, _ in COLUMN_SPEC]
COLUMN_WIDTHS = [width for _, _, width in COLUMN_SPEC]
CAPTURED = KEYS.index("captured")
VERDICT = KEYS.index("verdict")
QA_LABEL = KEYS.index("qa")
CENTERED = {KEYS.index("reviewed"), VERDICT}
NUMBERS = {KEYS.index("confidence"), KEYS.index("ood")}
OVERRIDE_COLOR = "#b35c00"

REVIEW_STYLE = """
QLabel#hint { color: #5f6b7a; }
QLabel#resultCount { font-size: 20px; font-weight: 700; }
QLabel#reviewVerdict { font-size: 26px; font-weight: 800; color: white; border-radius: 8px;
    padding: 2px 14px; }
QLabel#factName { color: #5f6b7a; }
QLabel#shadowAnswer { color: #6a3fa0; font-weight: 600; }
QLabel#sectionTitle { font-weight: 700; color: #2b3440; margin-top: 4px; }
QLabel#statusError { color: #c62828; font-weight: 600; }
QLabel#imageView { background: #101418; color: #c9d1d9; border-radius: 6px; }
QPushButton#classKey { font-weight: 700; min-width: 30px; max-width: 30px; padding: 3px; }
QProgressBar { border: 1px solid #c8cfd8; border-radius: 4px; text-align: center; min-height: 20px; }
QProgressBar::chunk { background: #4a78b0; border-radius: 3px; }
QLineEdit#missing { border: 2px solid #c62828; }
"""
