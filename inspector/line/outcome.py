"""What the live line hands out: one :class:`Outcome` per judged frame, an :class:`Event` per alarm.

These are the line's vocabulary rather than part of its machinery, so they live apart from
:mod:`inspector.line.pipeline`: the drift watch, the UI and the line outputs read them without
importing the pipeline that produces them (the pipeline in turn runs the drift watch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from inspector.line.sources.base import Frame
from inspector.line.verdicts import Decision


@dataclass
class Outcome:
    """One judged frame, as the UI and the writer see it."""

    frame: Frame
    decision: Decision
    probabilities: dict[str, float] | None
    merge_map: np.ndarray | None = None
    error: str | None = None
    image_ref: str | None = None
    part: int = 0  # 1, 2, 3 … in the run (what the line outputs count)
    judged_at: datetime | None = None


@dataclass
class Event:
    level: str  # info | warning | alarm
    kind: str
    message: str
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
