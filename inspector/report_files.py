"""Where a JSON report (``eval --json``, ``golden check --json``) may be written.

A report path is typed by a person, often by tab completion next to the images it is about:
``--json station/ok/part_001.png`` used to replace a dataset image with JSON (and eval's confusion
PNG beside it could replace another). A report may therefore only be written

- to a new file, or over a JSON report of the same kind that this product wrote (read back and
  recognised by its fields), never over any other existing file (an image, a bundle's model.json,
  settings.json, a golden baseline, someone's notes);
- outside the folder whose images are being judged (the station, or the golden parts): a new file
  there would itself become part of the data (a confusion PNG in a class folder is an image).

The check runs before any work, so a refused report leaves every file as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

from inspector.errors import InspectorError
from models.files import JSONTooDeep, output_target, read_json

# Fields every report of that kind has had since the product first wrote it (DESIGN §4 for eval).
REPORT_FIELDS: dict[str, frozenset[str]] = {
    "eval": frozenset({"accuracy", "macro_f1", "per_class", "confusion", "classes", "n"}),
    "golden": frozenset({"model", "sha256", "alarm", "parts", "changed", "message"}),
}
COMMANDS = {"eval": "inspector eval", "golden": "inspector golden check"}
# A report is a few kilobytes; anything far bigger is not one (and is not read whole to find out).
MAX_REPORT_BYTES = 16 << 20


def is_report(path: Path, kind: str) -> bool:
    """Whether ``path`` holds a JSON report of ``kind`` (``eval`` or ``golden``) as this product writes it."""
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return False
        value = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, JSONTooDeep):
        return False
    return isinstance(value, dict) and REPORT_FIELDS[kind] <= value.keys()


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop: not provably outside
        return True


def check_report_output(
    path: Path,
    kind: str,
    *,
    judged: Path | None = None,
    companions: tuple[Path, ...] = (),
    option: str = "--json",
) -> None:
    """Raise :class:`InspectorError` (one line) unless ``path`` may take a ``kind`` report.

    ``judged``: the folder whose images are judged (station root, golden folder); nothing is
    written inside it. ``companions``: files written beside the report (eval's confusion PNG); one
    that exists may be replaced only together with a report of ours it belongs to.
    FIFOs, folders and devices are refused by :func:`models.files.output_target` (an OSError).
    """
    target = output_target(path)  # through a symlink: the file that would be replaced
    for output in (target, *(output_target(c) for c in companions)):
        if judged is not None and _inside(output, judged):
            raise InspectorError(
                f"{path}: {option} is inside {judged}, the folder being judged; write the report elsewhere"
            )
    ours = target.exists() and is_report(target, kind)
    if target.exists() and not ours:
        raise InspectorError(
            f"{path}: exists and is not a report that '{COMMANDS[kind]}' wrote; "
            f"{option} replaces only its own reports; give a new file name"
        )
    for companion in companions:
        if companion.exists() and not ours:
            raise InspectorError(
                f"{companion}: exists and does not belong to a report at {path}; "
                f"{option} would replace it, give a new file name"
            )
