"""The Review screen: QA walks the ledger's NG and UNSURE parts, confirms or corrects them, exports.

Rooms: ``constants`` (choices, columns, style), ``jobs`` (worker-side functions, tagged replies),
``table`` (the paged Qt model), ``widgets`` (image, detail panel, reason dialog), ``layout`` (the
screen's widgets), ``actions`` (review keys, export) and ``view`` (state, queries, the part's detail).
"""

from ui.review.constants import CAPTURED, PAGE, QA_LABEL
from ui.review.view import ReviewView

__all__ = ["CAPTURED", "PAGE", "QA_LABEL", "ReviewView"]
